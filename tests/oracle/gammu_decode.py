#!/usr/bin/python3
"""Decode SMS PDUs with python-gammu: the oracle behind tests/gammu_oracle.rs.

Input: one hex PDU per line on stdin, the full PDU as handed to AT+CMGS in PDU
mode, i.e. starting with the SMSC address field ("00" when empty).
Output: one JSON object per input line, in order, on stdout:

    {"text": str, "number": str, "coding": str, "class": int,
     "smsc": str, "validity": str, "mr": int, "type": str, "length": int,
     "udh_type": str, "udh_id8": int, "udh_id16": int,
     "part": int, "parts": int}

or {"error": str} when python-gammu cannot decode the line. It never exits
early, so the caller can match output line i to input line i.

Needs Debian's python3-gammu, so run it with /usr/bin/python3
(`apt-get install python3-gammu`).

Quirk (python-gammu 3.2.4 / libgammu 1.42.0, see toolchain.md section 6):
for GSM 7-bit text with escape pairs (extension table: ^ { } [ ] ~ | \\ and
the euro sign, form feed) DecodePDU sizes "Text" by the septet count, so the
string is padded with NULs and sometimes stale characters from an earlier
decode, e.g. 'h\\u00e9llo \\u20ac[]\\x00\\x00\\u3007'. We cut "Text" at the
first NUL; a NUL never appears in real decoded text (GSM 0x00 decodes as '@',
and our encoder does not emit U+0000).
"""

import json
import sys

import gammu


def decode(hexpdu):
    try:
        data = bytes.fromhex(hexpdu)
    except ValueError as e:
        return {"error": "not hex: %s" % e}
    try:
        d = gammu.DecodePDU(data, SMSC=True)
    except Exception as e:  # gammu.GSMError and friends
        return {"error": "%s: %s" % (type(e).__name__, e)}

    text = d.get("Text")
    if text is None:
        text = ""
    elif isinstance(text, bytes):
        # 8-bit data: not something our encoder emits for text.
        return {"error": "binary Text from gammu: %s" % text.hex()}
    nul = text.find("\x00")
    if nul >= 0:
        text = text[:nul]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogate: a part that ends or starts inside a UTF-16 pair.
        return {"error": "decoded text is not valid Unicode: %r" % text}

    udh = d.get("UDH") or {}
    smsc = d.get("SMSC") or {}
    return {
        "text": text,
        "number": d.get("Number", ""),
        "coding": d.get("Coding", ""),
        "class": d.get("Class", -1),
        "smsc": smsc.get("Number", ""),
        "validity": smsc.get("Validity", ""),
        "mr": d.get("MessageReference", -1),
        "type": d.get("Type", ""),
        "length": d.get("Length", -1),
        "udh_type": udh.get("Type", ""),
        "udh_id8": udh.get("ID8bit", -1),
        "udh_id16": udh.get("ID16bit", -1),
        "part": udh.get("PartNumber", -1),
        "parts": udh.get("AllParts", 0),
    }


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            out = decode(line)
        except Exception as e:  # belt and braces: one bad line must not end the run
            out = {"error": "oracle failure: %s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
