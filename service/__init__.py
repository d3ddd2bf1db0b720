"""The online side: the server core (server/), the API it speaks (api/), the Python client
library (client/), typing clients (keyboard/) and operator commands (tools/). No torch here."""
