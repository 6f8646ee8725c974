/** Screens whose API operations are not in graphql/schema.graphql yet. */
import { Notice } from "../components/ui";

export function ComingSoon({ title, operations }: { title: string; operations: string[] }) {
  return (
    <>
      <h2>{title}</h2>
      <Notice kind="info">
        Not available yet: this screen needs the API operations {operations.map((o) => `\`${o}\``).join(", ")}, which are being added to the
        control API.
      </Notice>
    </>
  );
}
