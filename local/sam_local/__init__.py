"""`make sam-local`: the three functions run by SAM CLI's own `sam local invoke`, in containers, on the local stack.

    python -m local.sam_local [--arch auto|arm64|x86_64] [--no-pull] [--keep-engine] [--out DIR]

1. Docker engine (``engine.py``): a running one is used as it is; otherwise Debian's ``docker.io`` is installed when
   ``dockerd`` is missing, and ``dockerd --iptables=false --bridge=none`` is started for the run and stopped after it.
2. Architecture: the template says arm64. On an x86_64 host arm64 is emulated by Debian's ``qemu-user-static``
   (binfmt_misc) as a Neoverse N1 (``QEMU_CPU``); when that cannot work, the local run (only) is built and invoked as
   x86_64, and the output says so.
3. Image (``image.py``): ``public.ecr.aws/lambda/python:3.13-<arch>`` where it is present or can be pulled; else a
   stand-in built here from Debian's packages and PyPI, which SAM CLI gets through ``--invoke-image``.
4. ``run.py``: ``sam build``, then the embedded local stack (moto + Billbee and sevDesk sandboxes, sample shop, sample
   connection) is started in this process and ``sam local invoke`` runs PollFunction, ExportFunction and ApiFunction
   with the files of ``events/`` (the run's copies carry a queued message, the stack's token and the exported order),
   ``--env-vars`` pointing them at the stack and ``--docker-network host`` (made to work by ``sam_cli.py``). Each
   result is printed and checked against the stack: the poll queued orders, the export booked one, the API answered.
"""
