"""Sends SMTP command lines and prints each whole reply (every line); used by
tests/non_loopback.rs to speak from inside a network namespace.

usage: smtp_transcript.py HOST PORT COMMAND...
"""
import socket
import sys

host, port, commands = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.create_connection((host, port), timeout=20)
f = s.makefile("rb")


def reply():
    while True:
        line = f.readline().decode().rstrip()
        print(line)
        if len(line) < 4 or line[3] != "-":
            return


reply()
for c in commands:
    s.sendall(c.encode() + b"\r\n")
    reply()
