/** @publicApi */
export interface OnLockEventOptions {
  /** Only events of lock names matching this glob (`*` any run of characters, `?` one character). */
  key?: string;
}
