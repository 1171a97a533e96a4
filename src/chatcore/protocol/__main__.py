"""Print the JSON Schema of protocol v1 (``python -m chatcore.protocol > docs/...json``)."""

import json

from chatcore.protocol.schema import json_schema

print(json.dumps(json_schema(), indent=2))
