"""nbgrader's exchange with a personal folder per student: classmates cannot list or read each
other's submissions or feedback, whatever they know of the file names.

nbgrader 0.9's default exchange (``nbgrader.exchange.default``) puts every submission in one
shared ``inbound/`` folder that every student must be able to write to. nbgrader creates it
without read permission for others, so it cannot be listed, but each submission inside is a
world-readable and world-writable folder (mode 0777) hidden only by its name
(``<student>+<assignment>+<timestamp>+<random>``); released feedback is world-readable too, hidden
by a hash. Anyone who learns such a name (an ``ls`` of an ``inbound/`` made world-readable by hand,
as setups that create it ``chmod 777`` do, a log line, a home folder left open) reads or replaces
the work (nbgrader #978, #1174, #1225). This plugin, loaded through nbgrader's own
``ExchangeFactory`` (nbgrader 0.9 has no such option built in; e2xgrader's "personalized inbound"
is the same idea), gives each student two folders that only they and the instructor can enter::

    <exchange root>/                     root    1777  (sticky: nobody renames the course folder)
      <course>/                          instr.  0755
        outbound/                        instr.  0755  releases, readable by all (nbgrader's own)
        inbound/                         instr.  0711  no listing, no writing for students
          <student>/                     instr.:<student's group> 2770  that student's submissions
        feedback/                        instr.  0711
          <student>/                     instr.:<student's group> 2770  that student's feedback

The personal folders belong to the instructor, with the student's own (private) group: the
student can write there but cannot open it to others, and nobody else can enter it. They are
made by root when a student is added (``hub/rnnhub.py``: :func:`personal_folders`); the classes
below only use them:

* :class:`PersonalSubmit` submits into ``inbound/<user>/`` (nbgrader's submit otherwise);
* :class:`PersonalCollect` collects ``inbound/*/<student>+<assignment>+*``, and only a submission
  whose name matches the folder it is in (nobody can hand in under another student's name);
* :class:`PersonalList` lists the same for the instructor (``nbgrader list --inbound``) and
  looks for a student's released feedback in their own folder (the Assignment List);
* :class:`PersonalReleaseFeedback` releases each student's feedback into ``feedback/<student>/``;
* :class:`PersonalFetchFeedback` fetches it from there.

The configuration (``hub/rnnhub.py`` writes it into the hub users' nbgrader config)::

    c.ExchangeFactory.submit = "rnn_exchange.PersonalSubmit"
    c.ExchangeFactory.collect = "rnn_exchange.PersonalCollect"
    c.ExchangeFactory.list = "rnn_exchange.PersonalList"
    c.ExchangeFactory.release_feedback = "rnn_exchange.PersonalReleaseFeedback"
    c.ExchangeFactory.fetch_feedback = "rnn_exchange.PersonalFetchFeedback"
"""

from __future__ import annotations

import base64
import glob
import hashlib
import os
import re
import shutil
from collections import defaultdict

from nbgrader.exchange.default import (
    ExchangeCollect,
    ExchangeFetchFeedback,
    ExchangeList,
    ExchangeReleaseFeedback,
    ExchangeSubmit,
)
from nbgrader.utils import check_mode, get_osusername, get_username, notebook_hash

INBOUND = "inbound"
FEEDBACK = "feedback"
# The modes of the folders (tests/test_hub.py checks them on the hub it starts).
EXCHANGE_ROOT_MODE = 0o1777
COURSE_MODE = 0o755
SHARED_MODE = 0o711  # inbound/ and feedback/: enter, never list or write
PERSONAL_MODE = 0o2770  # inbound/<student>/ and feedback/<student>/


def personal_folder(exchange, kind: str, user: str) -> str:
    """``<root>/<course>/<kind>/<user>``: a student's own inbound or feedback folder."""
    return os.path.join(exchange.root, exchange.coursedir.course_id, kind, user)


def _missing(kind: str, path: str) -> str:
    return (f"You have no {kind} folder in this course's exchange ({path}): ask your instructor "
            "to add you to the course (`make hub` does it for its own accounts; on a server, see "
            "the README's \"Running the course on JupyterHub\").")


class PersonalSubmit(ExchangeSubmit):
    """nbgrader's submit, into the student's own ``inbound/<user>/``."""

    def init_dest(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        if not self.authenticator.has_access(self.coursedir.student_id, self.coursedir.course_id):
            self.fail("You do not have access to this course.")
        self.inbound_path = personal_folder(self, INBOUND, get_osusername())
        if not os.path.isdir(self.inbound_path):
            self.fail(_missing("submission", self.inbound_path))
        if not check_mode(self.inbound_path, write=True, execute=True):
            self.fail(f"You cannot write to your submission folder {self.inbound_path}: ask your "
                      "instructor to check its permissions.")
        self.cache_path = os.path.join(self.cache, self.coursedir.course_id)
        student_id = self.coursedir.student_id
        if student_id == "*":
            student_id = get_username()
        elif "*" in student_id or "+" in student_id:
            self.fail(f"The student ID should contain no '*' nor '+'; got {student_id}")
        parts = [student_id, self.coursedir.assignment_id, self.timestamp]
        if self.add_random_string:
            parts.append(base64.urlsafe_b64encode(os.urandom(9)).decode("ascii"))
        self.assignment_filename = "+".join(parts)


class PersonalCollect(ExchangeCollect):
    """nbgrader's collect, from every student's ``inbound/<student>/``.

    A submission counts only in the folder of the student whose name it carries; one found
    elsewhere (only the folder's owner could have put it there) is skipped with a warning.
    The latest submission of each student is collected, or, with ``--before-duedate``, the
    latest one before the assignment's due date (nbgrader's rules)."""

    def init_src(self):
        from nbgrader.api import Gradebook, MissingEntry

        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, INBOUND)
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        if not check_mode(self.inbound_path, read=True, execute=True):
            self.fail(f"You don't have read permissions for the directory: {self.inbound_path}")
        student = self.coursedir.student_id or "*"
        pattern = os.path.join(self.inbound_path, student,
                               f"{student}+{self.coursedir.assignment_id}+*")
        records = []
        for path in sorted(glob.glob(pattern)):
            folder, name = os.path.split(os.path.relpath(path, self.inbound_path))
            record = self._path_to_record(path)
            if record["username"] != folder:
                self.log.warning("Skipping %s: a submission named for %s in the folder of %s",
                                 path, record["username"], folder)
                continue
            record["filename"] = os.path.join(folder, name)  # copy_files joins it to inbound/
            records.append(record)
        by_student = defaultdict(list)
        for record in records:
            by_student[record["username"]].append(record)

        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                self.duedate = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        self.src_records = []
        for recs in by_student.values():
            recs = self._sort_by_timestamp(recs)
            if self.duedate is not None and self.before_duedate:
                on_time = [r for r in recs if r["timestamp"] <= self.duedate]
                recs = on_time or recs
            self.src_records.append(recs[0])


def _md5(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


class PersonalList(ExchangeList):
    """nbgrader's list: inbound submissions from the personal folders (instructor), and released
    feedback from ``feedback/<student>/`` (the student's Assignment List)."""

    INBOUND_NAME = re.compile(
        r".*/(?P<course_id>[^/]*)/inbound/(?P<folder>[^/]+)/(?P<student_id>[^+/]*)\+"
        r"(?P<assignment_id>[^+/]*)\+(?P<timestamp>[^+/]*)(?P<random_string>\+[^/]*)?$")

    def init_dest(self):
        if not self.inbound:
            return super().init_dest()
        course = self.coursedir.course_id or "*"
        assignment = self.coursedir.assignment_id or "*"
        student = self.coursedir.student_id or "*"
        pattern = os.path.join(self.root, course, INBOUND, student, f"{student}+{assignment}+*")
        self.assignments = [p for p in sorted(glob.glob(pattern))
                            if (m := self.INBOUND_NAME.match(p)) and
                            m["folder"] == m["student_id"]]

    def parse_assignment(self, assignment):
        if not self.inbound:
            return super().parse_assignment(assignment)
        m = self.INBOUND_NAME.match(assignment)
        if m is None:
            raise RuntimeError(f"Could not parse the submission path {assignment!r}")
        info = m.groupdict()
        del info["folder"]
        return info

    def parse_assignments(self):
        assignments = super().parse_assignments()
        if self.inbound or self.cached:
            for assignment in assignments:
                for submission in assignment["submissions"]:
                    self._personal_feedback(submission)
        return assignments

    def _personal_feedback(self, info: dict) -> None:
        """Redo nbgrader's "is feedback released?" check of one submission (its ``path`` holds the
        ``submission_secret.txt`` the feedback's name is made from) in the student's own folder."""
        secret_path = os.path.join(info["path"], "submission_secret.txt")
        if not os.path.isfile(secret_path):
            return  # nbgrader < 0.7 submissions: left as nbgrader found them
        with open(secret_path) as fh:
            secret = fh.read()
        folder = os.path.join(self.root, info["course_id"], FEEDBACK, info["student_id"])
        for nb in info["notebooks"]:
            name = notebook_hash(secret=secret, notebook_id=nb["notebook_id"])
            path = os.path.join(folder, f"{name}.html")
            nb["has_exchange_feedback"] = os.path.isfile(path)
            nb["feedback_updated"] = bool(
                nb["has_exchange_feedback"] and nb["has_local_feedback"]
                and _md5(path) != _md5(nb["local_feedback_path"]))
        notebooks = info["notebooks"]
        info["has_exchange_feedback"] = bool(notebooks) and all(
            nb["has_exchange_feedback"] for nb in notebooks)
        info["feedback_updated"] = any(nb["feedback_updated"] for nb in notebooks)


class PersonalReleaseFeedback(ExchangeReleaseFeedback):
    """nbgrader's release_feedback, each student's pages into their ``feedback/<student>/``."""

    def init_dest(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.outbound_feedback_path = self.dest_path = os.path.join(self.course_path, FEEDBACK)
        if not os.path.isdir(self.dest_path):
            self.fail(f"The exchange has no feedback folder: {self.dest_path}")

    def copy_files(self):
        exclude = set(filter(None, (self.coursedir.student_id_exclude or "").split(",")))
        regexp = re.compile(re.escape(os.path.sep).join([
            self.coursedir.format_path(self.coursedir.feedback_directory, "(?P<student_id>.*)",
                                       self.coursedir.assignment_id, escape=True),
            "(?P<notebook_id>.*).html"]))
        missing = []
        for html_file in sorted(glob.glob(os.path.join(self.src_path, "*.html"))):
            m = regexp.match(html_file)
            if m is None:
                self.log.error("Could not match %r with %r", html_file, regexp.pattern)
                continue
            student, notebook_id = m["student_id"], m["notebook_id"]
            if student in exclude:
                continue
            folder = os.path.dirname(html_file)
            with open(os.path.join(folder, "submission_secret.txt")) as fh:
                secret = fh.read()
            dest = personal_folder(self, FEEDBACK, student)
            if not check_mode(dest, write=True, execute=True):
                self.log.error(_missing(f"feedback folder for {student}:", dest))
                missing.append(student)
                continue
            name = notebook_hash(secret=secret, notebook_id=notebook_id)
            tmp = os.path.join(dest, f"{name}-tmp.html")
            shutil.copy(html_file, tmp)
            os.chmod(tmp, 0o640)  # the folder's group is the student's
            shutil.move(tmp, os.path.join(dest, f"{name}.html"))  # atomic: never half a page
            self.log.info("Released feedback for %s on %s/%s/%s", student,
                          self.coursedir.course_id, self.coursedir.assignment_id, notebook_id)
        if missing:
            self.fail("No feedback folder in the exchange for: " + ", ".join(sorted(set(missing))))


class PersonalFetchFeedback(ExchangeFetchFeedback):
    """nbgrader's fetch_feedback, from the student's own ``feedback/<user>/``."""

    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.outbound_path = self.src_path = personal_folder(self, FEEDBACK, get_osusername())
        self.cache_path = os.path.join(self.cache, self.coursedir.course_id)
        if not os.path.isdir(self.src_path):
            self.fail(_missing("feedback", self.src_path))
        if not check_mode(self.src_path, read=True, execute=True):
            self.fail(f"You cannot read your feedback folder {self.src_path}.")
        assignment = self.coursedir.assignment_id or "*"
        self.feedback_files = []
        for submission in sorted(glob.glob(os.path.join(self.cache_path, f"*+{assignment}+*"))):
            _, assignment_id, timestamp = os.path.basename(submission).split("+")
            secret_path = os.path.join(submission, "submission_secret.txt")
            if not os.path.isfile(secret_path):
                continue
            with open(secret_path) as fh:
                secret = fh.read()
            for notebook in sorted(glob.glob(os.path.join(submission, "*.ipynb"))):
                notebook_id = os.path.splitext(os.path.basename(notebook))[0]
                page = os.path.join(self.src_path,
                                    f"{notebook_hash(secret=secret, notebook_id=notebook_id)}.html")
                if os.path.exists(page):
                    self.feedback_files.append((notebook_id, timestamp, page))
                    self.log.info("Found feedback for '%s/%s/%s' submitted at %s",
                                  self.coursedir.course_id, assignment_id, notebook_id,
                                  timestamp)
                else:
                    self.log.warning("No feedback yet for '%s/%s/%s' submitted at %s",
                                     self.coursedir.course_id, assignment_id, notebook_id,
                                     timestamp)
