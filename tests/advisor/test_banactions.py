"""Check 5 (issue 24): the "no firewall tool" host (iptables actions, only nft installed) and sshd on 2222
while its jail blocks port 22; the fixes applied through the engine, then a real failure line bans. The
copy's firewall actions are overridden by empty .local files: nothing touches a firewall."""

from __future__ import annotations

from pathlib import Path

from tests.advisor.helpers import apply, bans, f2b, findings, host_api
from tests.fixtures.advisor_host import FixtureHost, clean_jail_local


def test_iptables_actions_without_iptables_are_found_and_switched_to_nftables(tmp_path: Path,
                                                                              fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    host.file("/usr/sbin/iptables").unlink()
    host.file("/usr/sbin/ipset").unlink()
    with host_api(tmp_path, host, clean_jail_local(host)) as (api, server):
        found = findings(api)
        assert set(found) == {"banaction-tool-missing:sshd", "banaction-tool-missing:bangui-auth"}, found
        missing = found["banaction-tool-missing:sshd"]
        assert missing["severity"] == "critical" and "iptables-multiport needs iptables" in missing["detail"]
        assert missing["fix"]["set"] == {"banaction": "nftables-multiport", "banaction_allports": "nftables-allports"}
        apply(api, "banaction-tool-missing:sshd")
        assert [str(a) for a in f2b(server, "get", "sshd", "actions")] == ["nftables-multiport"]
        assert "banaction-tool-missing:sshd" not in findings(api)
        host.sshd_failures("192.0.2.9", 5)
        bans(server, "sshd", "192.0.2.9")


def test_no_firewall_tool_at_all_is_found_without_a_guess(tmp_path: Path, fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    for tool in ("iptables", "ipset", "nft"):
        host.file(f"/usr/sbin/{tool}").unlink()
    with host_api(tmp_path, host, clean_jail_local(host)) as (api, _):
        found = findings(api)
        assert found["banaction-tool-missing:sshd"]["fix"] is None


def test_sshd_on_another_port_than_the_jail_blocks_is_found_and_fixed(tmp_path: Path,
                                                                      fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    host.write("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n#Port 22\n")
    host.write("/etc/ssh/sshd_config.d/port.conf", "Port 2222\n")
    host.listening(2222)
    with host_api(tmp_path, host, clean_jail_local(host)) as (api, server):
        found = findings(api)
        assert set(found) == {"jail-port-mismatch:sshd"}, found
        assert found["jail-port-mismatch:sshd"]["fix"]["set"] == {"port": "2222"}
        apply(api, "jail-port-mismatch:sshd")
        assert findings(api) == {}
        host.sshd_failures("192.0.2.9", 5)
        bans(server, "sshd", "192.0.2.9")
