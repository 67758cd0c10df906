// Benchmark guest: upgrade makes 100,000 host calls (`is-offline`), downgrade runs
// 2,000 `execute`s.
//
// ```toml
// id = "bjs"
// message = "javascript"
// ```

import { execute, isOffline } from 'retort:migration/op@0.1.0';

export function upgrade() {
  let offline = 0;
  for (let i = 0; i < 100000; i++) {
    offline += isOffline() ? 1 : 0;
  }
  if (offline !== 0) throw 'offline?';
}

export function downgrade() {
  for (let i = 0; i < 2000; i++) {
    execute('UPDATE bench SET n = n + 1', []);
  }
}
