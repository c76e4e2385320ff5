"""The shop's WSGI application under cProfile, for bench/webhook_profile.py (one gunicorn worker).

Only requests carrying `X-Bench-Profile: 1` are profiled, from the moment gunicorn hands the
request to Django to the moment the response is complete, so warm-up and setup requests stay out.
`POST /bench/profile-dump` (answered here, never by Django) writes the statistics gathered so far
to the file named by BENCH_PROFILE_OUT. BENCH_PROFILE_TIMER=cpu counts this process's CPU time
(waits on PostgreSQL left out), `wall` the clock.
"""

import cProfile
import os
import time

from config.wsgi import application as shop

_timer = time.process_time if os.environ.get("BENCH_PROFILE_TIMER", "cpu") == "cpu" else None
profile = cProfile.Profile(_timer) if _timer else cProfile.Profile()


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/bench/profile-dump":
        profile.dump_stats(os.environ["BENCH_PROFILE_OUT"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"dumped\n"]
    if environ.get("HTTP_X_BENCH_PROFILE") != "1":
        return shop(environ, start_response)
    profile.enable()
    try:
        response = shop(environ, start_response)
        body = b"".join(response)  # Django's response is complete once its body is read
        if hasattr(response, "close"):
            response.close()  # request_finished: Django closes or keeps its connection here
        return [body]
    finally:
        profile.disable()
