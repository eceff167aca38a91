# expect: line 5: base image rayproject/ray:2.59.0-py311-cpu: ray 2.59.0, but the project pins ray 2.60.0
# expect: line 7: pip install without -c constraints.txt
# expect: line 8: COPY source 'no_such_folder' is not in the build context
ARG RAY_VERSION=2.59.0
FROM rayproject/ray:${RAY_VERSION}-py311-cpu
COPY pyproject.toml constraints.txt ./
RUN pip install --no-cache-dir torch==2.13.0
COPY no_such_folder /app
