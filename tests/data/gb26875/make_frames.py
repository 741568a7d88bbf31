#!/usr/bin/env python3
"""Writes the extra GB/T 26875.3 test frames of this directory (JSON files
holding "frame_hex", like the corpus's binary samples).  Run it from this
directory after changing it; the files are committed.  The frame layout is
in plugins/gb26875/gb26875.c.  tests/integration/test_gb26875.py imports
the builders."""
import json

UITD = bytes.fromhex('070301200000')        # 0x000020010307, little-endian
CENTRE = bytes.fromhex('010000000000')


def frame(serial, adu, cmd=2, src=UITD, dst=CENTRE, t=(3, 45, 21, 14, 3, 25), ver=(1, 0),
          fix=None):
    body = (serial.to_bytes(2, 'little') + bytes(ver) + bytes(t) + src + dst +
            len(adu).to_bytes(2, 'little') + bytes([cmd]) + adu)
    f = bytearray(b'@@' + body + bytes([sum(body) & 0xff]) + b'##')
    if fix:
        fix(f)
    return bytes(f)


def component(ctype, caddr, status, desc, t=(3, 45, 21, 14, 3, 25), st=1, sa=1):
    return (bytes([st, sa, ctype]) + caddr.to_bytes(4, 'little') + status.to_bytes(2, 'little') +
            desc.encode('gb18030').ljust(31, b'\0') + bytes(t))


def analog(ctype, caddr, atype, raw, t=(0, 50, 21, 14, 3, 25), st=1, sa=1):
    return (bytes([st, sa, ctype]) + caddr.to_bytes(4, 'little') + bytes([atype]) +
            raw.to_bytes(2, 'little', signed=True) + bytes(t))


def adu(kind, objs):
    return bytes([kind, len(objs)]) + b''.join(objs)


def write(name, data, note):
    with open(name, 'w') as f:
        json.dump({'note': note, 'frame_hex': data.hex(' ').upper()}, f, ensure_ascii=False,
                  indent=2)
        f.write('\n')


KITCHEN = '3号楼2单元201室厨房'


def main():
    write('smoke_detector_fire_cleared.json',
          frame(18, adu(2, [component(42, 0x00010017, 0x0001, KITCHEN, (40, 52, 21, 14, 3, 25))])),
          'serial 18: the kitchen detector of smoke_detector_fire_alarm.json back to 0x0001 (normal run)')
    write('smoke_fire_and_fault_two_objects.json',
          frame(30, adu(2, [component(42, 0x00010017, 0x0003, KITCHEN),
                            component(31, 0x00010031, 0x0103, '3号楼2单元201室客厅')])),
          'serial 30: two objects: smoke fire, and a point heat detector (type 31) in fire with power fault (bit8)')
    write('retransmission_new_time.json',
          frame(17, adu(2, [component(42, 0x00010017, 0x0003, KITCHEN)]), t=(13, 45, 21, 14, 3, 25)),
          'serial 17 again, same ADU, header time regenerated 10 s later: a retransmission')
    write('analog_temperature_hot.json',
          frame(40, adu(3, [analog(18, 0x00030001, 3, 785)])),
          'serial 40: temperature electrical fire detector 18/0x00030001, analog type 3 = 78.5 degC')
    write('analog_temperature_warm.json',
          frame(41, adu(3, [analog(18, 0x00030001, 3, 670, (0, 55, 21, 14, 3, 25))])),
          'serial 41: 67.0 degC, inside the 5 degC hysteresis')
    write('analog_temperature_cool.json',
          frame(42, adu(3, [analog(18, 0x00030001, 3, 412, (0, 5, 22, 14, 3, 25))])),
          'serial 42: 41.2 degC')
    write('analog_current_residual.json',
          frame(43, adu(3, [analog(17, 0x00020003, 9, 3)])),
          'serial 43: analog current 0.3 A of the residual-current detector 17/0x00020003')
    write('uitd_state_main_power_fault.json',
          frame(50, adu(21, [bytes([0x09]) + bytes((0, 10, 19, 15, 3, 25))])),
          'serial 50: UITD state 0x09: normal monitoring + main power fault (bit3)')
    write('uitd_state_normal_again.json',
          frame(51, adu(21, [bytes([0x01]) + bytes((0, 20, 19, 15, 3, 25))])),
          'serial 51: UITD state 0x01: normal')
    write('system_state_fire.json',
          frame(60, adu(1, [bytes([1, 1]) + (0x0003).to_bytes(2, 'little') + bytes((3, 45, 21, 14, 3, 25))])),
          'serial 60: fire alarm system 1/1 in fire (0x0003)')
    write('uitd_operation_self_test.json',
          frame(61, adu(24, [bytes([0x10, 0x01]) + bytes((0, 0, 10, 15, 3, 25))])),
          'serial 61: UITD operation: self-test (bit4) by operator 1')
    write('invalid_time_label.json',
          frame(62, adu(2, [component(42, 0x00010023, 0x0003, '3号楼楼梯间5层', (0, 0, 25, 32, 13, 25))]),
                t=(0, 0, 25, 32, 13, 25)),
          'serial 62: a fire with an impossible time label (hour 25, day 32, month 13)')
    write('bad_checksum.json',
          frame(63, adu(2, [component(42, 0x00010017, 0x0003, KITCHEN)]),
                fix=lambda f: f.__setitem__(-3, (f[-3] + 1) & 0xff)),
          'serial 63: checksum off by one')
    write('bad_tail.json',
          frame(64, adu(2, [component(42, 0x00010017, 0x0003, KITCHEN)]),
                fix=lambda f: f.__setitem__(-1, 0x24)),
          "serial 64: ends with '#$'")
    write('bad_length.json',
          frame(65, adu(2, [component(42, 0x00010017, 0x0003, KITCHEN)]) + b'\0'),
          'serial 65: one stray byte after the only object')
    write('unknown_object_type.json',
          frame(66, bytes([0x80, 1, 0xAA, 0x55])),
          'serial 66: vendor information object type 128')
    write('heartbeat_empty.json', frame(67, b''), 'serial 67: command 2 with an empty ADU (keep-alive)')


if __name__ == '__main__':
    main()
