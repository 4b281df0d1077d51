from __future__ import annotations

from backend.services.broker_probe import connect_packet


def test_connect_packet_is_mqtt_311_with_clean_session():
    packet = connect_packet("probe", None, None)
    assert packet[0] == 0x10
    assert packet[1] == len(packet) - 2
    assert packet[2:8] == b"\x00\x04MQTT"
    assert packet[8] == 4  # protocol level 3.1.1
    assert packet[9] == 0x02  # clean session, no credentials
    assert packet.endswith(b"\x00\x05probe")


def test_connect_packet_carries_credentials():
    packet = connect_packet("p", "user", "secret")
    assert packet[9] == 0xC2
    assert packet.endswith(b"\x00\x04user\x00\x06secret")


def test_long_packets_use_multi_byte_remaining_length():
    packet = connect_packet("p", "u" * 200, None)
    assert packet[1] & 0x80  # continuation bit set
    length = (packet[1] & 0x7F) + (packet[2] << 7)
    assert length == len(packet) - 3
