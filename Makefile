# sipapp developer tasks (GNU make). `make run` starts the server from a
# fresh clone; `make test` is what continuous integration runs.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Programs the tests drive, as COMMAND:DEBIAN-PACKAGE, one per line.
DEPS += sipp:sip-tester
DEPS += ip:iproute2
DEPS += unshare:util-linux

.PHONY: venv run deps test lint bench clean distclean

venv: $(STAMP)

# Reinstalled whenever the package metadata changes.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -e '.[dev,test]'
	touch $@

run: venv
	$(VENV)/bin/twistd -n sipapp --config resources/sipapp.toml

# Installs only what is missing; `apt-get update` runs at most once.
deps:
	@missing=""; \
	for dep in $(DEPS); do \
		command -v "$${dep%%:*}" >/dev/null 2>&1 || missing="$$missing $${dep#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends $$missing; \
	fi

lint: venv
	$(VENV)/bin/ruff check sipapp tests benchmarks twisted
	$(VENV)/bin/mypy sipapp

test: deps venv lint
	$(VENV)/bin/pytest -q

# Message-layer figures, then the call-rate ramp of sipapp and Kamailio with SIPp
# on loopback (about 12 minutes; no step starts after 14; tables go into docs/performance.md).
# `make bench BENCH_ARGS=--quick` runs short steps and leaves the docs alone.
# Debian's kamailio package starts a system-wide server where systemd runs:
# that one is stopped and disabled at once; the benchmark runs its own.
BENCH_ARGS ?=
bench: venv
	$(PY) benchmarks/parse.py
	@command -v sipp >/dev/null 2>&1 || { $(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends sip-tester; }
	@command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || { \
		$(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends kamailio && \
		{ ! [ -d /run/systemd/system ] || $(SUDO) systemctl disable --now kamailio.service; }; }
	$(PY) benchmarks/calls.py $(BENCH_ARGS)

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis \
		_trial_temp twistd.pid twisted/plugins/dropin.cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
