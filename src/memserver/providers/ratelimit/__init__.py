"""Request counters for rate limits: fixed windows, in-process (`memory`) or shared through Redis (`redis`).

A window is `window_s` long and aligned to the epoch, so every replica counts into the same Redis
key (`memserver:rl:<kind>:<id>:<window>`) without coordination. Counting is one INCR (+ EXPIRE on the
first hit) per limited subject per request.
"""
