// Benchmark guest: a second JavaScript revision (other code, the same engine), to
// measure what compiling it costs once the first one's functions are cached.
//
// ```toml
// id = "bjsnext"
// message = "javascript, the next revision"
// ```

import { execute } from 'retort:migration/op@0.1.0';

export function upgrade() {
  const names = Array.from({ length: 10 }, (_, i) => `item ${i}`);
  for (const name of names) {
    execute('UPDATE bench SET n = n + ?', [{ tag: 's64', val: BigInt(name.length) }]);
  }
}

export function downgrade() {
  execute('UPDATE bench SET n = 0', []);
}
