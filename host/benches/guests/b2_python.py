# Benchmark guest: upgrade makes 100,000 host calls (`is-offline`), downgrade runs
# 2,000 `execute`s.
#
# ```toml
# id = "bpython"
# message = "python"
# ```

import wit_world
from wit_world.imports import op


class WitWorld(wit_world.WitWorld):
    def upgrade(self) -> None:
        offline = 0
        for _ in range(100_000):
            offline += op.is_offline()
        assert offline == 0

    def downgrade(self) -> None:
        for _ in range(2000):
            op.execute("UPDATE bench SET n = n + 1", [])
