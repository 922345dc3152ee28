/**
 * Update a service (`ServiceUpdate`): the blueprint's YAML, its templates and the variables.
 * The API gives back the target revision's blueprint, variables and template *names*, not the
 * templates' texts, so each template is given again (pasted or picked from a file), as
 * `service update --blueprint FILE` reads them beside the blueprint.
 */
import { useEffect, useState } from 'preact/hooks';
import { ButterError, type Client } from '../../../../src/sdk/client.ts';
import type { Service } from '../../../../src/api/schemas/service.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Field } from '../../app/field.tsx';
import { useAction } from '../use-action.ts';

interface Props {
  client: Client;
  service: Service;
  onChanged(): void;
}

/** `yaml`, loaded when the form opens (not with the panel). */
type Yaml = Pick<typeof import('yaml'), 'parse' | 'stringify'>;

interface Template {
  path: string;
  text: string;
}

/** The variables' YAML as a map, or an error naming `vars` (shown next to that field). */
function parseVars(YAML: Yaml, text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = YAML.parse(text);
  } catch (e) {
    throw new ButterError(400, 'invalid', `not YAML: ${(e as Error).message}`, 'vars');
  }
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ButterError(400, 'invalid', 'must be a YAML map of variable names to values', 'vars');
  return v as Record<string, unknown>;
}

/** `--var key=value` words, the value as one line of YAML (what the CLI parses back). */
function varWords(YAML: Yaml | null, text: string): string[] {
  if (!YAML) return text.trim() ? ['--vars-file', 'vars.yml'] : [];
  try {
    return Object.entries(parseVars(YAML, text)).flatMap(([k, v]) => ['--var', `${k}=${YAML.stringify(v, { collectionStyle: 'flow' }).trim()}`]);
  } catch {
    return ['--vars-file', 'vars.yml'];
  }
}

export function UpdateForm({ client, service: s, onChanged }: Props) {
  const [open, setOpen] = useState(false);
  const [blueprint, setBlueprint] = useState(s.blueprint);
  const [vars, setVars] = useState('');
  const [templates, setTemplates] = useState<Template[]>([]);
  const update = useAction<Service>();
  const [YAML, setYaml] = useState<Yaml | null>(null);

  // Start from the target revision when the form opens (not again while it is edited: events
  // arrive during a rollout): its blueprint, variables and the names of its templates.
  useEffect(() => {
    if (!open) return;
    let live = true;
    void Promise.all([client.call('listServiceRevisions', { params: { name: s.name } }), import('yaml')]).then(
      ([{ items }, YAML]) => {
        if (live) setYaml(() => YAML);
        const target = items.find((r) => r.target);
        if (!live || !target) return;
        setBlueprint(target.blueprint);
        setVars(Object.keys(target.vars).length ? YAML.stringify(target.vars) : '');
        setTemplates(target.templates.map((path) => ({ path, text: '' })));
      },
      () => {},
    );
    return () => {
      live = false;
    };
  }, [open, s.name]);

  const submit = async (e: Event) => {
    e.preventDefault();
    const done = await update.run(async () => {
      const files = Object.fromEntries(templates.filter((t) => t.path.trim()).map((t) => [t.path.trim(), t.text]));
      const Y = YAML ?? (await import('yaml'));
      return client.call('updateService', { params: { name: s.name }, body: { blueprint, files, vars: parseVars(Y, vars) } });
    });
    if (done) onChanged();
  };
  const setTemplate = (i: number, t: Partial<Template>) => setTemplates((all) => all.map((x, j) => (j === i ? { ...x, ...t } : x)));

  if (!open)
    return (
      <div class="update-closed">
        <button type="button" onClick={() => setOpen(true)}>
          Update {s.name}…
        </button>
      </div>
    );
  return (
    <form class="update-form" onSubmit={submit} aria-label={`Update ${s.name}`}>
      <h4>Update</h4>
      <Field label="Blueprint (YAML)" name="blueprint" error={update.error}>
        <textarea rows={10} spellcheck={false} value={blueprint} onInput={(e) => setBlueprint(e.currentTarget.value)} required />
      </Field>
      <Field label="Variables (YAML map)" name="vars" error={update.error} hint="e.g. Greeting: hello">
        <textarea rows={4} spellcheck={false} value={vars} onInput={(e) => setVars(e.currentTarget.value)} />
      </Field>
      <fieldset class="templates">
        <legend>Templates the blueprint's initialization names</legend>
        {templates.map((t, i) => (
          <div class="template" key={i}>
            <Field label={`Template ${i + 1} path`} name={`files.${i}`}>
              <input value={t.path} onInput={(e) => setTemplate(i, { path: e.currentTarget.value })} />
            </Field>
            <Field label={`Template ${i + 1} text`} name={`files.${t.path}`} error={update.error}>
              <textarea rows={4} spellcheck={false} value={t.text} onInput={(e) => setTemplate(i, { text: e.currentTarget.value })} />
            </Field>
            <label class="file-pick">
              Read from a file
              <input type="file" onChange={async (e) => {
                const f = e.currentTarget.files?.[0];
                if (f) setTemplate(i, { text: await f.text(), ...(t.path ? {} : { path: f.name }) });
              }} />
            </label>
            <button type="button" class="small" onClick={() => setTemplates((all) => all.filter((_x, j) => j !== i))}>
              Remove template
            </button>
          </div>
        ))}
        <button type="button" class="small" onClick={() => setTemplates((all) => [...all, { path: '', text: '' }])}>
          Add template
        </button>
      </fieldset>
      <div class="actions">
        <button type="submit" class="primary" disabled={update.busy}>
          {update.busy ? 'Updating…' : 'Roll out'}
        </button>
        <button type="button" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
      <ApiErrorNote error={update.error} fields={['blueprint', 'vars', 'files']} />
      {update.result ? (
        <p role="status">{update.result.targetRevision === s.revision && update.result.rollout.state === 'done' ? 'nothing changed' : `rolling to revision ${update.result.targetRevision}`}</p>
      ) : null}
      <CliHint args={['service', 'update', s.name, '--blueprint', 'blueprint.yml', ...varWords(YAML, vars)]} />
    </form>
  );
}
