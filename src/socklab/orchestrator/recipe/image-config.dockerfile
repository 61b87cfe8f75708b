# Image settings of the base, for both methods (`docker import --change` lines for
# bootstrap, appended to Dockerfile.pull for pull). One instruction a line.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV LANG=C.UTF-8
ENV PYTHONUNBUFFERED=1
LABEL io.socklab.image=base
CMD ["socklab-node"]
