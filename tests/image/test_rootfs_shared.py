"""The rootfs tests (tests/rootfs), run against the built image: every test
there takes the fixture `runtime`, which here runs the image with buildah
(conftest.py). Backup to S3 and to a volume, restore, PostgreSQL 15 and 18,
the rendered CronJob, restore Job and helm test pod, and the Jobs that must
fail at once."""

from test_rootfs import *  # noqa: F401,F403
from test_rendered_jobs import *  # noqa: F401,F403
