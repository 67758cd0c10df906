# Split authors.full_name into first and last names, row by row.
#
# ```toml
# id = "b2"
# down = ["a1"]
# message = "split author names"
# created = "2026-11-24T08:01:00Z"
# ```

import wit_world
from wit_world.imports import op, types


def placeholder(n: int) -> str:
    return f"${n}" if op.dialect() == types.SqlDialect.POSTGRES else "?"


class WitWorld(wit_world.WitWorld):
    def upgrade(self) -> None:
        op.execute("ALTER TABLE authors ADD COLUMN first_name VARCHAR(100)", [])
        op.execute("ALTER TABLE authors ADD COLUMN last_name VARCHAR(100)", [])
        update = (
            f"UPDATE authors SET first_name = {placeholder(1)}, "
            f"last_name = {placeholder(2)} WHERE id = {placeholder(3)}"
        )
        done = 0
        with op.query("SELECT id, full_name FROM authors ORDER BY id", []) as cursor:
            while True:
                batch = cursor.next(100)
                if not batch:
                    break
                for row in batch:
                    first, _, last = row[1].value.rpartition(" ")
                    op.execute(
                        update,
                        [types.Value_Text(first), types.Value_Text(last), row[0]],
                    )
                    done += 1
        op.log(types.LogLevel.INFO, f"split {done} names")

    def downgrade(self) -> None:
        op.execute("ALTER TABLE authors DROP COLUMN last_name", [])
        op.execute("ALTER TABLE authors DROP COLUMN first_name", [])
