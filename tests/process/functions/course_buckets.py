"""A course-style function: a dict keyed by int, a tuple and a set kept in context.env."""


def handler(input, context):
    env = context.env
    if "buckets" not in env:
        env["buckets"] = {i: [] for i in range(4)}
        env["seen"] = set()
    i = input["i"]
    env["buckets"][i % 4].append(i)  # KeyError: 0 if the keys came back as strings
    env["seen"].add((i % 2, i))
    env["last"] = (i, input.get("timestamp"))
    return {
        "i": i,
        "sizes": [len(env["buckets"][k]) for k in range(4)],
        "seen": len(env["seen"]),
        "last_is_tuple": isinstance(env["last"], tuple),
    }
