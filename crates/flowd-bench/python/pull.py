import time


def workflow(settings):
    # When each run's workflow() started, for the bench to compare with the fire times.
    settings["starts"] = settings.get("starts", [])[-50:] + [time.time()]
