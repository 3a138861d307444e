"""`llmlab grade-class`: grade a class's submissions (see shared/DESIGN.md, "Grading a class").

- submissions.py: find one entry per student (a folder of NN_x/ folders or a zip of one),
  unpack zips safely, hash each topic folder;
- store.py: the results database (SQLite, WAL), one row per (student, topic), written by
  the parent process only, as each result arrives;
- run.py: the job queue: each submission x topic graded by the existing per-topic child
  process (llmlab.grading.grade.run_topic) with its guards, `jobs` at a time, with a
  progress bar; unchanged work already in the database is skipped (resume);
- export.py: students x topics CSV, per-student feedback, LMS gradebook CSV, Gradescope
  results.json per submission.
"""
