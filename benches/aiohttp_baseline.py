#!/usr/bin/env python3
"""The plain Python script the overhead benchmark compares `ds100-offboard run` with.

The same job done the obvious way: read the CSV, send one DELETE …/ds100/delete/otp per row
(bearer token, JSON body) with 8 requests in flight over one aiohttp session, and write one
report row per input row (row number, the three fields, HTTP status, error). No validation,
lookups, retries, pacing or fsync: a floor for what any such script costs.

    DS100_TOKEN=… aiohttp_baseline.py BASE_URL INPUT.csv REPORT.csv [CONCURRENCY]
"""

import asyncio
import csv
import os
import sys

import aiohttp

DELETE_PATH = "/AdminInterface/restapi/v1/ds100/delete/otp"


async def main(base_url, input_csv, report_csv, concurrency):
    token = os.environ["DS100_TOKEN"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    url = base_url.rstrip("/") + DELETE_PATH
    queue = asyncio.Queue(maxsize=2 * concurrency)
    with open(input_csv, newline="") as inp, open(report_csv, "w", newline="") as out:
        report = csv.writer(out)
        report.writerow(
            ["row", "tokenSerialNumber", "deviceSerialNumber", "userId", "http_status", "error"]
        )
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

            async def worker():
                while True:
                    item = await queue.get()
                    if item is None:
                        return
                    n, row = item
                    status, error = "", ""
                    try:
                        async with session.delete(url, json=row) as resp:
                            await resp.read()
                            status = resp.status
                    except aiohttp.ClientError as e:
                        error = str(e)
                    report.writerow(
                        [n, row["tokenSerialNumber"], row["deviceSerialNumber"], row["userId"],
                         status, error]
                    )

            workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
            for n, row in enumerate(csv.DictReader(inp), start=1):
                await queue.put((n, row))
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    c = int(sys.argv[4]) if len(sys.argv) == 5 else 8
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], c))
