"""Reading a poll's window: slices of submission time, dense seconds in parts, both-way reads,
and the checks that make a read consistent. Pure arithmetic beside one reader over the client.
"""
