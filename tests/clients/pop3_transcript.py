"""Sends POP3 command lines and prints each reply's first line; used by tests/non_loopback.rs.

usage: pop3_transcript.py HOST PORT COMMAND...
"""
import socket
import sys

host, port, commands = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.create_connection((host, port), timeout=20)
f = s.makefile("rb")
print(f.readline().decode().rstrip())
for c in commands:
    s.sendall(c.encode() + b"\r\n")
    first = f.readline().decode().rstrip()
    print(first)
    if c.upper() == "CAPA" or (c.upper() == "LIST" and first.startswith("+OK")):
        while True:
            line = f.readline().decode().rstrip()
            print(line)
            if line == ".":
                break
