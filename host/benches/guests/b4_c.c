// Benchmark guest: upgrade makes 100,000 host calls (`is-offline`), downgrade runs
// 2,000 `execute`s.
//
// ```toml
// id = "bc"
// message = "c"
// ```

#include "revision.h"

bool exports_revision_upgrade(revision_string_t *err) {
  int offline = 0;
  for (int i = 0; i < 100000; i++) {
    offline += retort_migration_op_is_offline();
  }
  if (offline != 0) {
    revision_string_dup(err, "offline?");
    return false;
  }
  return true;
}

bool exports_revision_downgrade(revision_string_t *err) {
  revision_string_t sql;
  revision_string_set(&sql, "UPDATE bench SET n = n + 1");
  retort_migration_op_list_value_t params = {NULL, 0};
  for (int i = 0; i < 2000; i++) {
    uint64_t rows;
    retort_migration_op_error_t error;
    if (!retort_migration_op_execute(&sql, &params, &rows, &error)) {
      revision_string_dup(err, "update failed");
      return false;
    }
  }
  return true;
}
