# Benchmark guest: a second Python revision (other code, the same interpreter), to
# measure what compiling it costs once the first one's functions are cached.
#
# ```toml
# id = "bpythonnext"
# message = "python, the next revision"
# ```

import wit_world
from wit_world.imports import op, types


class WitWorld(wit_world.WitWorld):
    def upgrade(self) -> None:
        names = [f"item {i}" for i in range(10)]
        for name in names:
            op.execute("UPDATE bench SET n = n + ?", [types.Value_S64(len(name))])

    def downgrade(self) -> None:
        op.execute("UPDATE bench SET n = 0", [])
