"""Redis: the session layer, the client with its error guard, key names and Lua scripts."""
