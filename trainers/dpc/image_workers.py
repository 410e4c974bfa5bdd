"""Long-lived processes that load negative images: started once per run, fed one request after another.

A DataLoader over a rewritten sampler (what the negative pool used before) restarts its iteration for every
request: each step paid the workers' reset and a wait for every worker's acknowledgement, so on 2 cores no workers
beat two. Here each worker takes chunks ``(request, index, keys)`` from one task queue and puts the stacked images
back; the main process puts a request's chunks and later gathers them in order. Images are loaded by
``load(key)`` in the worker (seeded per image, so which worker loads what does not change the result).
"""
import os
import queue

import torch
import torch.multiprocessing as mp


def _work(load, tasks, results, parent):
    torch.set_num_threads(1)  # one core per worker, as DataLoader's workers
    while True:
        try:
            task = tasks.get(timeout=1)
        except queue.Empty:
            if os.getppid() != parent:  # the trainer was killed: no orphan is left behind
                return
            continue
        if task is None:
            return
        request, index, keys = task
        try:
            results.put((request, index, torch.stack([load(key) for key in keys]), None))
        except (OSError, ValueError, RuntimeError, TypeError) as err:  # raised in the main process (names the image)
            results.put((request, index, None, err))


class ImageWorkers:
    def __init__(self, load, num_workers):
        context = mp.get_context()
        self.tasks, self.results = context.Queue(), context.Queue()
        self.processes = [context.Process(target=_work, args=(load, self.tasks, self.results, os.getpid()), daemon=True)
                          for _ in range(num_workers)]
        for process in self.processes:
            process.start()
        self.requests = 0

    def submit(self, chunks):
        """Start loading ``chunks`` (lists of keys); returns the request's number for ``gather``."""
        self.requests += 1
        for index, keys in enumerate(chunks):
            self.tasks.put((self.requests, index, keys))
        return self.requests, len(chunks)

    def gather(self, request, count):
        """The stacked images of every chunk of ``request``, in chunk order."""
        parts = {}
        while len(parts) < count:
            try:
                number, index, images, err = self.results.get(timeout=5)
            except queue.Empty:
                dead = [p.pid for p in self.processes if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"Negative-image worker(s) {dead} died (killed, or out of memory)") from None
                continue
            if number != request:
                continue  # a chunk of an earlier request whose collection failed
            if err is not None:
                raise err
            parts[index] = images
        return torch.cat([parts[i] for i in range(count)])

    def close(self):
        for _ in self.processes:
            self.tasks.put(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        self.processes = []
