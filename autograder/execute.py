"""Execute one notebook with papermill parameters in a given (pooled) kernel.

Papermill does the parameterisation (``parameters`` -> ``injected-parameters`` cell) and runs
the notebook through its engine registry. Dry Lab registers one engine, ``drylab``
(:class:`DrylabEngine`, also declared as a ``papermill.engine`` entry point), whose client
differs from papermill's in what grading needs:

- it keeps going after a cell raises (nbgrader's ``allow_errors``), because later questions
  are still gradable;
- a per-cell timeout interrupts the cell and stops the notebook there, and a wall-clock
  watchdog kills the kernel when the whole submission runs too long (a loop that swallows
  ``KeyboardInterrupt`` cannot outlive it);
- a dying kernel (``os._exit``, memory limit) ends the run instead of raising, and the
  executed notebook so far is returned with where and why it stopped;
- outputs are capped per cell and per notebook.

Papermill's ``execute_notebook`` is not used directly because it raises on the first error
output after execution and would drop the executed notebook; its building blocks
(``parameterize_notebook``, the engine registry) are.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellControlSignal, CellExecutionError, DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.parameterize import parameterize_notebook
from papermill.utils import merge_kwargs, remove_args
from traitlets import Any, Integer

from autograder.kernels import Limits, kill_kernel

ENGINE_NAME = "drylab"

#: The error output a cell gets when it hits the cell timeout (nbgrader uses the same name).
TIMEOUT_ERROR = {
    "ename": "CellTimeoutError",
    "evalue": "",
    "traceback": ["CellTimeoutError: the cell ran longer than the cell timeout"],
}


@dataclass
class ExecutionResult:
    """An executed notebook and how its execution ended.

    Attributes
    ----------
    nb : NotebookNode
        The notebook with outputs (cells after ``stopped_at`` were not run).
    stopped_at : int or None
        Index of the cell during which execution stopped, ``None`` when all cells ran.
    stop_reason : str or None
        ``"timeout"`` (cell timeout or watchdog) or ``"kernel_died"``.
    message : str
        Human-readable reason for the stop, naming the cell.
    duration_s : float
        Wall time of the execution.
    truncated_cells : list of int
        Cells whose output was cut at the output cap.
    """

    nb: object
    stopped_at: int | None = None
    stop_reason: str | None = None
    message: str = ""
    duration_s: float = 0.0
    truncated_cells: list[int] = field(default_factory=list)


class _Stop(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class DrylabNotebookClient(PapermillNotebookClient):
    """Papermill's client with grading semantics (see the module docstring)."""

    max_output_cell = Integer(1_000_000).tag(config=True)
    max_output_total = Integer(5_000_000).tag(config=True)
    watchdog = Any(None)  # a _Watchdog, to tell a watchdog kill from a kernel death

    def __init__(self, nb_man, **kw):
        super().__init__(nb_man, **kw)
        self._cell_bytes: dict[int, int] = {}
        self._total_bytes = 0
        self.truncated_cells: list[int] = []
        self.stopped_at: int | None = None
        self.stop_reason: str | None = None
        self.stop_message = ""
        self._cell_timed_out = False

    async def async_start_new_kernel_client(self):
        """nbclient's, with a ready handshake that does not idle.

        ``KernelClient.wait_for_ready`` ends by draining IOPub until it has been silent for
        0.2 s: a fixed 0.2 s of idle per notebook, a third of a small notebook's whole run.
        The drain is not needed here: the handshake below still waits until IOPub is
        connected (a message of the kernel_info request arrived on it), and every later
        IOPub message is matched to its cell by ``parent_header.msg_id``, so a stale status
        message is ignored anyway.
        """
        from queue import Empty

        from jupyter_core.utils import ensure_async

        self.kc = self.km.client()
        try:
            await ensure_async(self.kc.start_channels())
            deadline = time.monotonic() + self.startup_timeout
            while True:
                msg_id = self.kc.kernel_info()
                try:
                    reply = await ensure_async(self.kc.shell_channel.get_msg(timeout=1))
                except Empty:
                    reply = None
                if reply is not None and reply["parent_header"].get("msg_id") == msg_id:
                    try:
                        await ensure_async(self.kc.iopub_channel.get_msg(timeout=0.2))
                    except Empty:
                        pass  # IOPub not connected yet: ask again
                    else:
                        self.kc._handle_kernel_info_reply(reply)
                        break
                if not await ensure_async(self.km.is_alive()):
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {self.startup_timeout} s")
        except Exception:
            await self._async_cleanup_kernel()
            raise
        self.kc.allow_stdin = False
        return self.kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def execute(self, **kwargs):
        self.reset_execution_trackers()
        with self.setup_kernel(**kwargs):
            try:
                self.papermill_execute_cells()
            finally:
                if self.kc is not None:
                    self.kc.stop_channels()
        return self.nb

    def papermill_execute_cells(self):
        for index, cell in enumerate(self.nb.cells):
            self._cell_timed_out = False
            try:
                self.nb_man.cell_start(cell, index)
                self.execute_cell(cell, index)
                if self._cell_timed_out:
                    raise _Stop("timeout", f"cell {index} ran longer than the cell timeout")
            except CellExecutionError as ex:
                # Only raised for errors nbclient does not allow; keep grading the rest.
                self.nb_man.cell_exception(self.nb.cells[index], cell_index=index, exception=ex)
            except _Stop as stop:
                self._stop(index, stop.reason, stop.message)
                break
            except (KeyError, TypeError, ValueError) as exc:
                # nbclient could not read the kernel's messages: the resident's code broke
                # the protocol (e.g. patched json.dumps, which the kernel's session uses)
                self._stop(index, "kernel_died",
                           f"the kernel stopped speaking the Jupyter protocol in cell {index} "
                           f"({type(exc).__name__}: {exc})")
                break
            except (DeadKernelError, CellControlSignal, RuntimeError, OSError) as exc:
                if self.watchdog is not None and self.watchdog.fired:
                    self._stop(index, "timeout",
                               f"the notebook ran longer than the time limit (in cell {index})")
                elif isinstance(exc, CellControlSignal):  # CellTimeoutError on iopub
                    self._stop(index, "timeout", f"cell {index} ran longer than the cell timeout")
                else:
                    self._stop(index, "kernel_died",
                               f"the kernel died while running cell {index} "
                               f"({type(exc).__name__}: {exc})")
                break
            finally:
                self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)

    def _stop(self, index: int, reason: str, message: str) -> None:
        self.stopped_at, self.stop_reason, self.stop_message = index, reason, message
        cell = self.nb.cells[index]
        if cell.cell_type == "code" and not any(
            o.get("output_type") == "error" for o in cell.get("outputs", [])
        ):
            from nbformat.v4 import new_output

            ename = "CellTimeoutError" if reason == "timeout" else "DeadKernelError"
            cell.outputs.append(new_output("error", ename=ename, evalue=message,
                                           traceback=[f"{ename}: {message}"]))

    async def _async_handle_timeout(self, timeout, cell=None):
        self._cell_timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._cell_bytes.get(cell_index, 0) + size
        self._cell_bytes[cell_index] = used
        self._total_bytes += size
        if used > self.max_output_cell or self._total_bytes > self.max_output_total:
            if cell_index not in self.truncated_cells:
                self.truncated_cells.append(cell_index)
                from nbformat.v4 import new_output

                outs.append(new_output("stream", name="stdout",
                                       text="\n[output truncated by the grader: too large]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


class DrylabEngine(NBClientEngine):
    """Papermill engine ``drylab``: runs :class:`DrylabNotebookClient`."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                 stderr_file=None, start_timeout=60, execution_timeout=None,
                                 **kwargs):
        holder = kwargs.pop("client_holder", None)
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        client = DrylabNotebookClient(nb_man, **final_kwargs)
        if holder is not None:
            holder["client"] = client
        return client.execute()


# The entry point registers it when papermill is imported from an installed package; register
# it here too so a source checkout works without reinstalling.
papermill_engines.register(ENGINE_NAME, DrylabEngine)


class _Watchdog:
    """Kills a kernel when the wall-clock limit passes."""

    def __init__(self, km, seconds: float):
        self.fired = False
        self._km = km
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        kill_kernel(self._km)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


def execute_notebook(nb, kernel, *, parameters: dict | None = None,
                     limits: Limits | None = None) -> ExecutionResult:
    """Run a notebook in a pooled kernel (see :class:`autograder.kernels.KernelPool`).

    Parameters
    ----------
    nb : NotebookNode
        The notebook to run (modified in place and returned in the result).
    kernel : autograder.kernels.WarmKernel
        A started kernel whose working directory already holds the submission's files.
    parameters : dict, optional
        Papermill parameters, e.g. ``{"resident_id": "r01"}``.
    limits : Limits, optional

    Returns
    -------
    ExecutionResult
    """
    from papermill import __version__ as pm_version

    limits = limits or Limits()
    nb.metadata["papermill"] = {"default_parameters": {}, "parameters": {},
                                "environment_variables": {}, "version": pm_version}
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    if parameters:
        nb = parameterize_notebook(nb, parameters, kernel_name="python3", language="python",
                                   engine_name=ENGINE_NAME)
        nb.metadata.papermill["parameters"] = dict(parameters)
    holder = {}
    sandbox = getattr(kernel.km, "sandbox", None)  # set by autograder.sandbox.provision_kernel
    if sandbox is not None:
        # the submission was copied in by the grader (root): hand it to the kernel's own uid
        sandbox.give(kernel.workdir)
    t0 = time.perf_counter()
    with _Watchdog(kernel.km, limits.timeout) as watchdog:
        nb_out = papermill_engines.execute_notebook_with_engine(
            ENGINE_NAME,
            nb,
            kernel_name="python3",
            km=kernel.km,
            input_path=None,
            output_path=None,
            progress_bar=False,
            log_output=False,
            start_timeout=int(limits.startup_timeout),
            execution_timeout=limits.cell_timeout,
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout=TIMEOUT_ERROR,
            iopub_timeout=4,
            max_output_cell=limits.max_output_cell,
            max_output_total=limits.max_output_total,
            watchdog=watchdog,
            client_holder=holder,
        )
    duration = time.perf_counter() - t0
    client = holder.get("client")
    if sandbox is not None:
        # Nothing of the resident may run on while the grader reads the answer files, and
        # none of them may be a link out of the workdir (into the reference cache, say).
        sandbox.seal()
    if sandbox is not None and getattr(client, "stop_reason", None) == "kernel_died":
        why = sandbox.explain_death()  # memory / process limit, from the cgroup counters
        if why:
            client.stop_message = f"{client.stop_message}: {why}"
    return ExecutionResult(
        nb=nb_out,
        stopped_at=getattr(client, "stopped_at", None),
        stop_reason=getattr(client, "stop_reason", None),
        message=getattr(client, "stop_message", ""),
        duration_s=duration,
        truncated_cells=list(getattr(client, "truncated_cells", [])),
    )

