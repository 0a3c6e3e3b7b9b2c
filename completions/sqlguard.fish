# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sqlguard_global_optspecs
    string join \n c/config= json q/quiet v/verbose no-progress no-push low-priority h/help V/version
end

function __fish_sqlguard_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sqlguard_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sqlguard_using_subcommand
    set -l cmd (__fish_sqlguard_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sqlguard -n "__fish_sqlguard_needs_command" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_needs_command" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -s V -l version -d 'Print version'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "backup" -d 'Dump databases, compress, and store them on every storage of the backup type'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "list" -d 'List backups from the index, newest first'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "report" -d 'Status at a glance: a table, JSON, or a self-contained HTML dashboard'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "verify" -d 'Prove backups intact: SHA-256, sizes, full decompression, trailer; --restore-test too'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "fetch" -d 'Download a backup to a file or stdout, checked against the index'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "restore" -d 'Restore a backup into a database, proven against the index before any byte is sent'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "prune" -d 'Apply retention: delete what the policy no longer keeps (--dry-run shows the plan)'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "schedule" -d 'Write crontab lines or systemd timer + service units from the config\'s schedules'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "config" -d 'Validate the configuration or show it resolved'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "index" -d 'Maintain the backup index'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "generate" -d 'Write the man pages and shell completions (for packagers and the repository)'
complete -c sqlguard -n "__fish_sqlguard_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -s t -l type -d 'Backup type: its storages, compression and retention come from the config' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -l server -d 'Only this server (repeatable; default: every configured server)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -l db -d 'Only this database (repeatable; default: the server\'s databases.include/exclude)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -l wait -d 'When the same job (server + backup + type) is running, wait up to this long instead of exiting 3' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -s j -l jobs -d 'Dump this many databases of each server at once (1-16; default: the server\'s `parallel`, else 1); the type\'s compressor threads are shared between them' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand backup" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l server -d 'Only this server (repeatable)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l db -d 'Only this database (repeatable)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -s t -l type -d 'Only this backup type' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l storage -d 'Only copies on this storage' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l status -d 'Only backups with this status' -r -f -a "success\t''
failed\t''"
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l since -d 'Only backups started since: a duration back from now (36h, 7d) or a date (2026-11-01, 2026-11-01T00:00:00Z)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l limit -d 'At most this many rows (the newest)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand list" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -s f -l format -d 'Output format (--json is the same as --format json)' -r -f -a "table\t''
json\t''
html\t''"
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -s o -l output -d 'Write to this file instead of stdout (atomically, for html)' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -l window -d 'Window for success rates, the failure list and the backups the JSON and HTML hold' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand report" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -s j -l jobs -d 'Load through this many client sessions at once (1-16): tables are created and filled side by side, a large InnoDB table\'s rows spread over all of them, and views, triggers, routines and events created after all data; the result is the same as with one' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l server -d 'Only this server (repeatable)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l db -d 'Only this database (repeatable)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -s t -l type -d 'Only this backup type' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l storage -d 'Only copies on this storage' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l latest -d 'Verify the newest backup of each database on each storage'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l restore-test -d 'Also restore each copy into a scratch database on its server, then drop it (with the restore engine: --jobs and --no-binlog apply)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l no-binlog -d 'Do not write the load to the server\'s binary log (sql_log_bin=0 in each session; needs the BINLOG ADMIN privilege on MariaDB), so that it reaches neither replicas nor a binlog archive'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand verify" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -l server -d 'Only this server (repeatable)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -l db -d 'Only this database (repeatable)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -s t -l type -d 'Only this backup type' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -l storage -d 'Only copies on this storage' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -s o -l output -d 'Output file (written to a temp name, renamed when every check passed); `-` or absent: stdout (written once the copy is proven)' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -s d -l decompress -d 'Write the plain SQL instead of the compressed file'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand fetch" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l to-server -d 'The server to restore into (a configured server name)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l to-database -d 'The database to restore into (default: the backup\'s database); created when missing' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l server -d 'Only this server (repeatable)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l db -d 'Only this database (repeatable)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -s t -l type -d 'Only this backup type' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l storage -d 'Only copies on this storage' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -s j -l jobs -d 'Load through this many client sessions at once (1-16): tables are created and filled side by side, a large InnoDB table\'s rows spread over all of them, and views, triggers, routines and events created after all data; the result is the same as with one' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l force -d 'Restore even into a database that already has tables'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l no-binlog -d 'Do not write the load to the server\'s binary log (sql_log_bin=0 in each session; needs the BINLOG ADMIN privilege on MariaDB), so that it reaches neither replicas nor a binlog archive'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -s n -l dry-run -d 'Show what would be read, checked and written where, and do nothing'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -s y -l yes -d 'Do not ask for confirmation (a terminal asks before anything is written)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand restore" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -s t -l type -d 'Only remove backups of this type (every type still counts for the newest-backup floor)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -l server -d 'Only this server (repeatable)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -l storage -d 'Only this storage' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -l wait -d 'When another prune of the same server is running, wait up to this long instead of exiting 3' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -s n -l dry-run -d 'Show the plan, with a reason for every removal (every entry with -v or --json), and change nothing'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand prune" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -s f -l format -d 'Scheduler to write for' -r -f -a "cron\t'A cron.d file (with a user column), for /etc/cron.d/sqlguard'
crontab\t'Lines for `crontab -e` (no user column)'
systemd\t'systemd .service + .timer pairs, for /etc/systemd/system'"
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -s o -l output-dir -d 'Write files into this directory instead of printing them' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -l binary -d 'The sqlguard binary the entries run' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -l config-path -d 'The config path the entries pass (default: the config this run loaded)' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -l user -d 'The user the jobs run as' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -l randomized-delay -d 'systemd only: RandomizedDelaySec= of every timer, e.g. 5m' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand schedule" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -f -a "check" -d 'Validate the config file and environment; exit 2 with the file, line and key on error'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -f -a "show" -d 'Print the resolved configuration as a config file (defaults filled in; secrets as their file or ${VAR}, an inline one as *** which config check refuses); --json: the resolved settings'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and not __fish_seen_subcommand_from check show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from check" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from check" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from check" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from check" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from check" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from show" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from show" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from show" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from show" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from show" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate the config file and environment; exit 2 with the file, line and key on error'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the resolved configuration as a config file (defaults filled in; secrets as their file or ${VAR}, an inline one as *** which config check refuses); --json: the resolved settings'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -f -a "rebuild" -d 'Rebuild the index from the manifests beside the backups, merging what the old index files knew (each is kept as <file>.bak-<time>)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and not __fish_seen_subcommand_from rebuild help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -l server -d 'Only this server (default: every configured server)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -l storage -d 'Only this storage (default: every configured storage)' -r
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from rebuild" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from help" -f -a "rebuild" -d 'Rebuild the index from the manifests beside the backups, merging what the old index files knew (each is kept as <file>.bak-<time>)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand index; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand generate" -l out -d 'Directory to write `man/` and `completions/` into (the repository root to refresh them)' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand generate" -s c -l config -d 'YAML config file [env: SQLGUARD_CONFIG]' -r -F
complete -c sqlguard -n "__fish_sqlguard_using_subcommand generate" -l json -d 'Print the result as a versioned JSON document on stdout'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand generate" -s q -l quiet -d 'Log only errors'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand generate" -s v -l verbose -d 'Log more detail (tools, versions, commands without secrets)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand generate" -l no-progress -d 'Never draw progress bars (they are drawn only when stderr is a terminal)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand generate" -l no-push -d 'Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand generate" -l low-priority -d 'Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included [config: low_priority; env: SQLGUARD_LOW_PRIORITY]'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand generate" -s h -l help -d 'Print help'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "backup" -d 'Dump databases, compress, and store them on every storage of the backup type'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "list" -d 'List backups from the index, newest first'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "report" -d 'Status at a glance: a table, JSON, or a self-contained HTML dashboard'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "verify" -d 'Prove backups intact: SHA-256, sizes, full decompression, trailer; --restore-test too'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "fetch" -d 'Download a backup to a file or stdout, checked against the index'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "restore" -d 'Restore a backup into a database, proven against the index before any byte is sent'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "prune" -d 'Apply retention: delete what the policy no longer keeps (--dry-run shows the plan)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "schedule" -d 'Write crontab lines or systemd timer + service units from the config\'s schedules'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "config" -d 'Validate the configuration or show it resolved'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "index" -d 'Maintain the backup index'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "generate" -d 'Write the man pages and shell completions (for packagers and the repository)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and not __fish_seen_subcommand_from backup list report verify fetch restore prune schedule config index generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate the config file and environment; exit 2 with the file, line and key on error'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Print the resolved configuration as a config file (defaults filled in; secrets as their file or ${VAR}, an inline one as *** which config check refuses); --json: the resolved settings'
complete -c sqlguard -n "__fish_sqlguard_using_subcommand help; and __fish_seen_subcommand_from index" -f -a "rebuild" -d 'Rebuild the index from the manifests beside the backups, merging what the old index files knew (each is kept as <file>.bak-<time>)'
