"""Model Context Protocol: memserver's memory tools for agents and IDEs.

The tools are a thin adapter over memserver's own REST API: each call is the equivalent HTTP request,
made with the caller's `Authorization: Token` key, so scoping, validation and errors are exactly the
REST API's. Over streamable HTTP (`/mcp`) the request goes to the same app in-process; over stdio
(`memserver mcp`) it goes to a memserver URL.
"""
