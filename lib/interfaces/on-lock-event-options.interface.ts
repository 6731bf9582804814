/** @publicApi */
export interface OnLockEventOptions {
  /** Only events of lock names matching this glob (`*` any run of characters, `?` one character). */
  key?: string;
  /** Only events of this origin: 'local' (this service's locks) or 'remote' (other processes', with the `watch` option). @default both */
  origin?: 'local' | 'remote';
  /** Events of the EtcdLockModule instance with this name (`forRoot({ name })`). @default the default instance */
  lock?: string;
}
