/**
 * A labelled form field with the API's error for it: when the error's `field` names this
 * field, the message is shown under the input and the input is marked invalid.
 */
import { cloneElement, type VNode } from 'preact';
import { useId } from 'preact/hooks';
import { errorForField } from './api-error.tsx';

export interface FieldProps {
  label: string;
  /** The API's name for it (`memory`, `networks`): matched against the error's `field`. */
  name: string;
  error?: unknown;
  hint?: string;
  /** One input, select or textarea; it gets the id, name and ARIA attributes. */
  children: VNode<Record<string, unknown>>;
}

export function Field({ label, name, error, hint, children }: FieldProps) {
  const auto = useId();
  const id = (children.props.id as string | undefined) ?? `f-${name.replace(/\W/g, '-')}-${auto.replace(/\W/g, '')}`;
  const own = errorForField(error, name);
  const described = [hint ? `${id}-hint` : '', own ? `${id}-err` : ''].filter(Boolean).join(' ');
  const input = cloneElement(children, {
    id,
    name,
    'aria-invalid': own ? 'true' : undefined,
    'aria-describedby': described || undefined,
  });
  return (
    <div class={own ? 'field invalid' : 'field'} data-field={name}>
      <label for={id}>{label}</label>
      {input}
      {hint ? (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      ) : null}
      {own ? (
        <small id={`${id}-err`} class="field-error" role="alert">
          {own.message}
        </small>
      ) : null}
    </div>
  );
}
