"""`llmlab grade-class`: grade a class's submissions (see shared/DESIGN.md, "Grading a class").

- submissions.py: find one entry per student (a folder, a zip of one), unpack zips safely,
  and per topic its folder of code or its notebook, with a content hash;
- job.py: one submission x topic in a private folder: code by the per-topic child process
  (llmlab.grading.grade.run_topic), a notebook by nbgrader (llmlab.book.nbgrade.autograde_one);
- run.py: the queue: every submission x topic not already stored, `jobs` at a time in local
  threads or on a Dask cluster (cluster.py), with a progress bar;
- store.py: the results database (SQLite, WAL), one row per (student, topic), written by
  the parent process only, as each result arrives;
- export.py: students x topics CSV, per-student feedback, LMS gradebook CSV, Gradescope
  results.json per submission; report.py: what the class got wrong;
- gradescope.py: the Gradescope autograder zip and the entry its run_autograder calls.
"""
