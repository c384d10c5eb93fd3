complete -c msh -s p -d 'Port to connect to (default 22)' -r
complete -c msh -s l -d 'User to log in as (default: the local user name)' -r
complete -c msh -s i -d 'Private key file to authenticate with (repeatable)' -r -F
complete -c msh -s F -d 'Read options from this ssh_config file (only the keys -o accepts) instead of ~/.ssh/config; `none`: no config file' -r -F
complete -c msh -s e -d 'Escape character for interactive sessions (default ~): typed after a newline, ~. disconnects, ~^Z suspends, ~? lists the escapes; none disables' -r
complete -c msh -s o -d 'An option in ssh_config syntax, e.g. -o StrictHostKeyChecking=accept-new (repeatable)' -r
complete -c msh -s L -d 'Local forward: listen on [bind_address:]port (or a Unix socket path) and forward each connection through the server to host:hostport (or a socket path on the server). Repeatable' -r
complete -c msh -s R -d 'Remote forward: the server listens on [bind_address:]port (0: it chooses, printed) and msh connects each connection to host:hostport; with no destination msh acts as a SOCKS proxy for it. Repeatable' -r
complete -c msh -s D -d 'Dynamic forward: a SOCKS4/4a/5 proxy (CONNECT, no authentication) on [bind_address:]port whose connections leave from the server. Repeatable' -r
complete -c msh -l pin -d 'Trust the host only if its key (or, for a host certificate, its CA\'s key) has this SHA256 fingerprint (repeatable: any one matches). known_hosts is then neither read nor written' -r
complete -c msh -s J -d 'Jump hosts: connect to each in turn and reach the next (finally the destination) through a direct-tcpip channel of the previous one; every hop\'s host key is verified as for a direct connection. Same as -o ProxyJump=...; `none` for a direct connection' -r
complete -c msh -s W -d 'Stdio forwarding: connect stdin/stdout to HOST:PORT through the server (a direct-tcpip channel, no session), e.g. as OpenSSH\'s `ProxyCommand msh -W %h:%p bastion`' -r
complete -c msh -l hosts -d 'Run the command on every host of LIST instead of one host: comma-separated [user@]host[:port] ([v6addr]:port for IPv6), or @FILE with one per line (# comments). The first word after the options is then the command. Never prompts (BatchMode), no PTY, stdin not sent; output lines are prefixed with the host as written, a summary ends on stderr. Exit status: 0 when every command exited 0, 255 when any host failed (connect, verification, authentication, timeout), else 1' -r
complete -c msh -l parallel -d 'With --hosts: at most N hosts connected at a time (default 32)' -r
complete -c msh -l timeout -d 'With --hosts: give up on a host after this long, from connect to exit (e.g. 30s, 2m)' -r
complete -c msh -s t -d 'Force a PTY even with a command (-tt: even when stdin is not a terminal)'
complete -c msh -s T -d 'Never request a PTY'
complete -c msh -s v -d 'More logging (-v, -vv, -vvv). RUST_LOG, when set, wins'
complete -c msh -s q -d 'Quiet: no warnings or notices on stderr (errors still)'
complete -c msh -s N -d 'No remote command or shell: only forward, until the connection ends or msh is interrupted (exit status 255 either way, as ssh)'
complete -c msh -s A -d 'Forward the ssh-agent (SSH_AUTH_SOCK) to the server (ForwardAgent=yes)'
complete -c msh -s a -d 'Do not forward the agent (ForwardAgent=no, the default)'
complete -c msh -s s -d 'Run the command as a subsystem (e.g. `sftp`), as scp and sftp ask for'
complete -c msh -s G -d 'Print the settings msh would use for the destination (ssh -G style) and exit'
complete -c msh -s x -d 'Disable X11 forwarding (msh never forwards X11; accepted for scp and sftp)'
complete -c msh -l json -d 'With --hosts: one JSON object per host on stdout as each finishes, instead of prefixed lines'
complete -c msh -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh -s V -l version -d 'Print version'
