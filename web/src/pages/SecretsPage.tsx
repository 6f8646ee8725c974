/** A bot's secrets: names and times for editors, add/replace/delete for owners (docs/secrets.md). */
import { useSearchParams } from "react-router";
import { SecretsPanel } from "../components/SecretsPanel";
import { useBot } from "./BotLayout";

export function SecretsPage() {
  const { bot, role } = useBot();
  // `?name=` comes from a missing-secrets warning: the name to set, filled in
  const [params] = useSearchParams();
  return (
    <>
      <h2>Secrets</h2>
      <SecretsPanel key={bot.id} botId={bot.id} role={role} initialName={params.get("name") ?? ""} />
    </>
  );
}
