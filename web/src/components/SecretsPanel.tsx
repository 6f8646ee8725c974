/**
 * Bot secrets (docs/secrets.md): the values an apiCall header's `{{secret.NAME}}` stands for.
 *
 * Editors see the names and when each was set (`Bot.secrets`), and which names the serving
 * revision uses without a value (`Bot.missingSecrets`); owners also add, replace and delete
 * them. Viewers are told that names are for editors; their role is not even asked for them.
 *
 * A value is write-only. The password input is uncontrolled: the value lives only in that input
 * (React state would also copy it into the input's `value` attribute) until it is saved, when
 * the input is cleared; it is never shown, logged or stored, and the mutation is sent through the
 * client directly, so no hook keeps its variables either. `MissingSecretsWarning` is the deploy page's warning
 * for a chosen revision, with a link here.
 */
import { useRef, useState, type RefObject } from "react";
import { Link } from "react-router";
import { useClient, useQuery, type CombinedError } from "urql";
import { BotSecretsQuery, DeleteBotSecretMutation, MissingSecretsQuery, SetBotSecretMutation } from "../api/operations";
import { ago, shortHash, when } from "../lib/format";
import { can, type Role } from "../lib/roles";
import { MAX_SECRETS, NAME_RULE, atLimit, secretField, validateSecret, type SecretErrors } from "../lib/secrets";
import { Empty, ErrorBox, Field, Loading, Notice } from "./ui";

/** The Secrets tab of a bot, optionally with a name to fill in (`?name=`, from a missing-secrets warning). */
export function secretsPath(botId: string, name?: string): string {
  const base = `/bots/${encodeURIComponent(botId)}/secrets`;
  return name ? `${base}?name=${encodeURIComponent(name)}` : base;
}

type Message = { kind: "ok" | "error"; text: string } | null;

export function SecretsPanel({ botId, role, initialName = "" }: { botId: string; role: Role | null; initialName?: string }) {
  const client = useClient();
  const mayList = can(role, "secrets");
  const owner = can(role, "manageSecrets");
  const [{ data, fetching, error }, refetch] = useQuery({ query: BotSecretsQuery, variables: { botId }, pause: !mayList });
  const [name, setName] = useState(NAME_RULE.test(initialName) ? initialName : "");
  const valueRef = useRef<HTMLInputElement>(null);
  const [confirm, setConfirm] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<Message>(null);
  const [deleteError, setDeleteError] = useState<CombinedError | undefined>(undefined);

  const intro = (
    <p className="small" style={{ marginTop: 0 }}>
      Values the bot's apiCall headers use as <span className="mono">{"{{secret.NAME}}"}</span>, e.g.{" "}
      <span className="mono">{'"Authorization": "Bearer {{secret.CRM_TOKEN}}"'}</span>. A value is stored encrypted and never shown again, here or
      anywhere; running bots use a change from their next update.
    </p>
  );
  if (!mayList) {
    return (
      <section aria-label="Secrets">
        {intro}
        <p className="muted small">Only editors and owners can see the names of this bot's secrets.</p>
      </section>
    );
  }

  const secrets = data?.bot?.secrets ?? [];
  const missing = data?.bot?.missingSecrets ?? [];
  const names = secrets.map((s) => s.name);
  const reload = () => refetch({ requestPolicy: "network-only" });
  const pick = (n: string) => {
    setName(n);
    valueRef.current?.focus();
  };

  async function remove(n: string) {
    setBusy(true);
    setMessage(null);
    setDeleteError(undefined);
    try {
      const r = await client.mutation(DeleteBotSecretMutation, { botId, name: n }).toPromise();
      if (r.error) setDeleteError(r.error);
      const res = r.data?.deleteBotSecret;
      if (!res) return;
      setConfirm(null);
      setMessage(res.__typename === "BotSecretDeleted" ? { kind: "ok", text: `Deleted ${res.name}.` } : { kind: "error", text: res.message });
      reload();
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-label="Secrets">
      {intro}
      <ErrorBox error={error} />
      {missing.length > 0 && (
        <Notice kind="warn">
          The serving revision's apiCall headers use {missing.length === 1 ? "a secret" : "secrets"} this bot does not have:{" "}
          {missing.map((n, i) => (
            <span key={n}>
              {i > 0 && ", "}
              {owner ? (
                <button type="button" className="link mono" onClick={() => pick(n)} title={`Set ${n}`}>
                  {n}
                </button>
              ) : (
                <span className="mono">{n}</span>
              )}
            </span>
          ))}
          . Until {missing.length === 1 ? "it is" : "they are"} set, those headers are sent with an empty value.
        </Notice>
      )}
      <h3 className="row spread">
        <span>Stored secrets</span>
        <span className="muted small" style={{ fontWeight: "normal" }}>
          {names.length} of at most {MAX_SECRETS}
        </span>
      </h3>
      {fetching && !data ? (
        <Loading />
      ) : secrets.length === 0 ? (
        <Empty>No secrets yet.{owner ? " Add one below." : ""}</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-label="Bot secrets">
            <thead>
              <tr>
                <th>Name</th>
                <th>Updated</th>
                {owner && <th />}
              </tr>
            </thead>
            <tbody>
              {secrets.map((s) => (
                <tr key={s.name}>
                  <td className="mono">{s.name}</td>
                  <td className="small">
                    {when(s.updatedAt)} <span className="muted">({ago(s.updatedAt)})</span>
                  </td>
                  {owner && (
                    <td className="small">
                      {confirm === s.name ? (
                        <span className="row">
                          <span>Delete {s.name}? A revision whose headers use it cannot be deployed until it is set again.</span>
                          <button type="button" className="danger" disabled={busy} onClick={() => void remove(s.name)}>
                            Yes, delete
                          </button>
                          <button type="button" className="secondary" disabled={busy} onClick={() => setConfirm(null)}>
                            Cancel
                          </button>
                        </span>
                      ) : (
                        <span className="row">
                          <button type="button" className="link small" disabled={busy} aria-label={`Replace ${s.name}`} onClick={() => pick(s.name)}>
                            replace
                          </button>
                          <button type="button" className="link small danger" disabled={busy} aria-label={`Delete ${s.name}`} onClick={() => setConfirm(s.name)}>
                            delete
                          </button>
                        </span>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      <ErrorBox error={deleteError} />
      {owner ? (
        <SecretForm botId={botId} names={names} name={name} onName={setName} valueRef={valueRef} onSaved={reload} />
      ) : (
        <p className="muted small">Owners add, replace and delete secrets; you can see their names here.</p>
      )}
    </section>
  );
}

function SecretForm({
  botId,
  names,
  name,
  onName,
  valueRef,
  onSaved,
}: {
  botId: string;
  /** the secrets the bot holds */
  names: string[];
  name: string;
  onName: (name: string) => void;
  valueRef: RefObject<HTMLInputElement | null>;
  onSaved: () => void;
}) {
  const client = useClient();
  const [errors, setErrors] = useState<SecretErrors>({});
  const [message, setMessage] = useState<Message>(null);
  const [error, setError] = useState<CombinedError | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const trimmed = name.trim();
  const replacing = names.includes(trimmed);

  async function submit() {
    setMessage(null);
    setError(undefined);
    const checked = validateSecret({ name, value: valueRef.current?.value ?? "" });
    if ("errors" in checked) {
      setErrors(checked.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const r = await client.mutation(SetBotSecretMutation, { botId, ...checked.secret }).toPromise();
      if (r.error) setError(r.error);
      const res = r.data?.setBotSecret;
      if (!res) return;
      if (res.__typename === "BotSecretSet") {
        if (valueRef.current) valueRef.current.value = "";
        onName("");
        setMessage({ kind: "ok", text: `Saved ${res.secret.name}${replacing ? " (replaced)" : ""}. Running bots use it from their next update.` });
        onSaved();
      } else if (res.__typename === "InvalidInput" && secretField(res.field)) {
        setErrors({ [secretField(res.field)!]: res.message });
      } else if (res.__typename === "SecretLimitReached") {
        setMessage({ kind: "error", text: `${res.message}: delete one to add another (replacing one is allowed).` });
      } else {
        setMessage({ kind: "error", text: res.message });
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="chart" style={{ marginTop: "0.8rem" }}>
      <h3>Add or replace a secret</h3>
      <form
        className="stack"
        noValidate
        autoComplete="off"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Field
          label="Name"
          id="secret-name"
          hint={replacing ? `${trimmed} exists: saving replaces its value` : "A-Z, then A-Z, 0-9 or _, at most 64 characters"}
          error={errors.name}
        >
          <input
            value={name}
            maxLength={200}
            autoComplete="off"
            spellCheck={false}
            autoCapitalize="characters"
            placeholder="CRM_TOKEN"
            onChange={(e) => {
              onName(e.target.value);
              setErrors(({ name: _gone, ...rest }) => rest);
            }}
          />
        </Field>
        <Field label="Value" id="secret-value" hint="never shown again; at most 4096 bytes, no line breaks" error={errors.value}>
          <input
            ref={valueRef}
            type="password"
            defaultValue=""
            autoComplete="off"
            spellCheck={false}
            data-1p-ignore=""
            data-lpignore="true"
            onChange={() => setErrors(({ value: _gone, ...rest }) => rest)}
          />
        </Field>
        {atLimit(names, trimmed) && (
          <p className="small muted" style={{ margin: 0 }}>
            This bot holds {names.length} secrets, the most allowed: replace one, or delete one to add another.
          </p>
        )}
        {message && <Notice kind={message.kind}>{message.text}</Notice>}
        <ErrorBox error={error} />
        <div>
          <button type="submit" disabled={busy}>
            {busy ? "Saving…" : replacing ? "Replace secret" : "Save secret"}
          </button>
        </div>
      </form>
    </div>
  );
}

/**
 * A warning under a revision picker (deploy, rollout): the names `revHash`'s apiCall headers use
 * that the bot has no value for (a deploy's preflight refuses it), with a link to set them.
 * Shown only to roles that may read `Bot.missingSecrets` (editors and owners).
 */
export function MissingSecretsWarning({ botId, revHash, role }: { botId: string; revHash: string | null | undefined; role: Role | null }) {
  const allowed = can(role, "secrets");
  const [{ data }] = useQuery({
    query: MissingSecretsQuery,
    variables: { botId, revHash: revHash ?? null },
    pause: !revHash || !allowed,
    // a secret set on the Secrets tab must not leave a stale warning behind
    requestPolicy: "network-only",
  });
  const missing = (revHash && allowed && data?.bot?.missingSecrets) || [];
  if (missing.length === 0) return null;
  const one = missing.length === 1;
  return (
    <Notice kind="warn">
      <b>Missing {one ? "secret" : "secrets"}:</b> the apiCall headers of <span className="mono">{shortHash(revHash, 12)}</span> use{" "}
      {missing.map((n, i) => (
        <span key={n}>
          {i > 0 && ", "}
          <span className="mono">{n}</span>
        </span>
      ))}
      , which this bot does not have. A deploy or rollout of it is refused at preflight until {one ? "it is" : "they are"} set.{" "}
      <Link to={secretsPath(botId, missing[0])}>Set {one ? "it" : "them"} on the Secrets tab</Link>
    </Notice>
  );
}
