import time


def handler(input, context):
    if input.get("hang"):
        time.sleep(3600)
    return {"value": input.get("value")}
