/** @publicApi */
export interface OnLockEventOptions {
  /** Only events of lock names matching this glob (`*` any run of characters, `?` one character). */
  key?: string;
  /** Events of the EtcdLockModule instance with this name (`forRoot({ name })`). @default the default instance */
  lock?: string;
}
