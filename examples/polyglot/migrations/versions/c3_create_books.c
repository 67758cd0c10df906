// Create books, referring to authors, with a few rows.
//
// ```toml
// id = "c3"
// down = ["b2"]
// message = "create books"
// created = "2026-11-24T08:02:00Z"
// ```

#include <stdio.h>
#include <string.h>
#include "revision.h"

// Runs one statement; on failure copies the database's message to *err.
static bool exec(const char *sql, revision_string_t *err) {
  revision_string_t s;
  revision_string_set(&s, sql);
  retort_migration_op_list_value_t params = {NULL, 0};
  uint64_t rows;
  retort_migration_op_error_t error;
  if (retort_migration_op_execute(&s, &params, &rows, &error)) {
    return true;
  }
  char message[512];
  snprintf(message, sizeof message, "cannot run \"%s\"", sql);
  revision_string_dup(err, message);
  retort_migration_op_error_free(&error);
  return false;
}

bool exports_revision_upgrade(revision_string_t *err) {
  static const char *statements[] = {
      "CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL "
      "REFERENCES authors (id), title VARCHAR(200) NOT NULL)",
      "INSERT INTO books (id, author_id, title) VALUES (1, 1, 'Notes on the Analytical Engine')",
      "INSERT INTO books (id, author_id, title) VALUES (2, 2, 'A Manual of Operation for the Automatic Sequence Controlled Calculator')",
      "INSERT INTO books (id, author_id, title) VALUES (3, 3, 'A Discipline of Programming')",
      "INSERT INTO books (id, author_id, title) VALUES (4, 4, 'Abstraction and Specification in Program Development')",
  };
  for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
    if (!exec(statements[i], err)) {
      return false;
    }
  }
  return true;
}

bool exports_revision_downgrade(revision_string_t *err) {
  return exec("DROP TABLE books", err);
}
