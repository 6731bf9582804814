/** `order:*` → /^order:.*$/ ; `?` is one character; everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  const source = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's');
}

/** A filter of lock names by a glob, as @OnLockEvent and the lock board take it; empty or absent: every name. */
export function lockGlob(glob: string | undefined): (key: string) => boolean {
  if (!glob) return () => true;
  const pattern = globToRegExp(glob);
  return key => pattern.test(key);
}
