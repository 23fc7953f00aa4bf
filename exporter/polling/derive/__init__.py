"""What a good read's jobs mean: aggregates by quota and project, folding, top jobs, run times,
and the jobs that started or finished between two polls. Pure arithmetic, no I/O.
"""
