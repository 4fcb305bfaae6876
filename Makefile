# The course's commands. `make lab` opens the course, `make test` runs every test; both create the
# environment (.venv, from requirements-dev.txt and the editable helpers package) when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBVAL := --nbval-lax --nbval-cell-timeout=900 --nbval-kernel-name=python3
# Two pytest workers with one thread each use both cores better than one worker with two threads (the smoke
# models are small). `loadfile` keeps each file's tests on one worker, in order: a notebook's cells share one
# kernel (nbval), and the student-copy tests (tests/test_student.py) run their kernels with their own data
# folder, so that they never write the files that the same notebook's nbval run writes.
PARALLEL := -n 2 --dist loadfile

.PHONY: help env lab test test-unit test-notebooks claims html assets bench lock student nbgrader book clean

help:
	@echo "make lab    - open the course in JupyterLab (creates .venv when missing)"
	@echo "make test   - unit tests, lesson tests on the pretrained Lite0, every notebook in the smoke profile"
	@echo "make claims - execute every notebook in the offline profile with its claims strict (CI runs it)"
	@echo "make html   - execute every notebook into build/*.html (offline unless COURSE_PROFILE says otherwise)"
	@echo "make assets - download every file the course uses (weights, data sets, paintings) before a lab;"
	@echo "              one part: make assets PART=weights (or pets, celeba, paintings); the table of"
	@echo "              files, sizes, checksums and licences: $(PY) -m helpers.data.prefetch --list"
	@echo "make book   - the course as a static site in build/book/html (notebooks executed offline)"
	@echo "make bench  - run the speed benchmarks"
	@echo "make student - write student/: every notebook with its solutions replaced by stubs"
	@echo "make nbgrader - lay the notebooks out for nbgrader in grading/ (then nbgrader generate_assignment NN_name)"

# On Python 3.11 (the version CI runs) the exact versions of constraints.txt; on others the lower bounds alone.
$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e . \
	    $$($(PY) -c 'import sys; print("-c constraints.txt" if sys.version_info[:2] == (3, 11) else "")')
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

env: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

test: $(STAMP)
	COURSE_PROFILE=smoke MPLBACKEND=Agg OMP_NUM_THREADS=1 $(PY) -m pytest $(PARALLEL) tests notebooks $(NBVAL)

test-unit: $(STAMP)
	COURSE_PROFILE=smoke MPLBACKEND=Agg OMP_NUM_THREADS=1 $(PY) -m pytest $(PARALLEL) tests

test-notebooks: $(STAMP)
	COURSE_PROFILE=smoke MPLBACKEND=Agg OMP_NUM_THREADS=1 $(PY) -m pytest $(PARALLEL) notebooks $(NBVAL)

# Every notebook in `offline` (the real course model at real sizes), each "what to look for" checked on the run:
# a claim that differs from the text raises (COURSE_CLAIMS=strict). Its own data folder, so that 06's
# fine-tuning and the look-alike data sets are made afresh, as in a student's first run.
claims: $(STAMP)
	rm -rf build/claims-data build/executed && mkdir -p build/claims-data build/executed
	COURSE_DATA=$(CURDIR)/build/claims-data COURSE_EXECUTED=$(CURDIR)/build/executed OMP_NUM_THREADS=1 \
	    $(PY) -m pytest -n 2 --dist load -p no:cacheprovider -rA tests/offline

# `offline` unless COURSE_PROFILE is set, so that no gigabytes of downloads start by surprise.
html: $(STAMP)
	mkdir -p build
	COURSE_PROFILE=$${COURSE_PROFILE:-offline} $(VENV)/bin/jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=1800 \
	    --output-dir build notebooks/*.ipynb

# The course as a static site in build/book/html: the notebooks executed in `offline` by `make claims` (run
# first when build/executed/ is empty), rendered by Jupyter Book in its own environment (.venv-book, pinned by
# book/constraints.txt), then opened in headless Chromium by tests/test_book.py. Publish build/book/html as is.
BOOK_PY := .venv-book/bin/python
book: $(STAMP)
	test -n "$$(ls build/executed/*.ipynb 2>/dev/null)" || $(MAKE) claims
	test -x .venv-book/bin/jupyter-book || { $(PYTHON) -m venv .venv-book && $(BOOK_PY) -m pip install --quiet \
	    -r book/requirements.txt -c book/constraints.txt; }
	rm -rf build/book-src build/book && mkdir -p build/book-src
	cp book/_config.yml book/_toc.yml book/intro.md build/executed/*.ipynb build/book-src/
	.venv-book/bin/jupyter-book build build/book-src --path-output build/book-out -q
	mv build/book-out/_build build/book && rm -rf build/book-out
	COURSE_BOOK=$(CURDIR)/build/book/html $(PY) -m pytest -p no:cacheprovider -rA tests/test_book.py

assets: $(STAMP)
	$(PY) -m helpers.data.prefetch $(PART)

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do COURSE_PROFILE=smoke $(PY) $$f || exit 1; done

# Record the versions of a fresh environment (delete .venv first) in constraints.txt.
lock: $(STAMP)
	{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

student: $(STAMP)
	$(PY) tools/make_student.py student

# nbgrader's course folder (grading/): every notebook linked in as one assignment (see nbgrader_config.py).
nbgrader: $(STAMP)
	$(PY) tools/make_student.py --nbgrader grading

clean:
	rm -rf build student grading .pytest_cache
