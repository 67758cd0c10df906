// Give every book a URL slug, computed row by row.
//
// ```toml
// id = "d4"
// down = ["c3"]
// message = "book slugs"
// created = "2026-11-24T08:03:00Z"
// ```

import { dialect, execute, query, log } from 'retort:migration/op@0.1.0';

function slugify(title) {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

export function upgrade() {
  execute('ALTER TABLE books ADD COLUMN slug VARCHAR(80)', []);
  const update = 'UPDATE books SET slug = ? WHERE id = ?';
  const cursor = query('SELECT id, title FROM books ORDER BY id', []);
  let done = 0;
  for (;;) {
    const batch = cursor.next(100);
    if (batch.length === 0) break;
    for (const [id, title] of batch) {
      execute(update, [{ tag: 'text', val: slugify(title.val) }, id]);
      done += 1;
    }
  }
  log('info', `gave ${done} books a slug`);
}

export function downgrade() {
  execute('ALTER TABLE books DROP COLUMN slug', []);
}
