import { InvalidLockKeyError } from './lock.errors.js';

/** Longest accepted lock name, in characters; etcd keys stay small and readable. */
export const MAX_LOCK_KEY_LENGTH = 512;

// C0 controls and DEL: they garble logs and etcdctl output, and are never meant.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** True when `text` has a control character (C0 or DEL). */
export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTERS.test(text);
}

/** Checks a user-supplied lock name and returns it unchanged; throws InvalidLockKeyError. */
export function validateLockKey(key: unknown): string {
  if (typeof key !== 'string') {
    throw new InvalidLockKeyError(`expected a string, got ${key === null ? 'null' : typeof key}`);
  }
  if (key.length === 0) throw new InvalidLockKeyError('it is empty; name what you lock, e.g. "order:42"');
  if (key.length > MAX_LOCK_KEY_LENGTH) {
    throw new InvalidLockKeyError(`it has ${key.length} characters, the maximum is ${MAX_LOCK_KEY_LENGTH}`);
  }
  if (hasControlCharacter(key)) {
    throw new InvalidLockKeyError(`it contains a control character (in ${JSON.stringify(key)})`);
  }
  return key;
}
