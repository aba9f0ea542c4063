/*
 * test_options.c - shardbusd's settings: defaults, every flag's mapping onto sb_config and
 * sb_server_config, bad values, the config file (keys, sections, errors with file:line) and
 * flags overriding it, --check-config's output read back to the same settings.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "options.h"

static struct sbd_options opt;
static char err[1024];

/* Parse a NULL-terminated list of arguments (after "shardbusd"). */
static int parse(const char *first, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"shardbusd";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *))
        argv[argc++] = strdup(a);
    va_end(ap);
    argv[argc] = NULL;
    int rc = sbd_options_parse(&opt, argc, argv, err, sizeof(err));
    for (int i = 1; i < argc; i++)
        free(argv[i]);
    return rc;
}

static char conf_path[64];

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    CHECK(f);
    fputs(text, f);
    fclose(f);
}

static void expect_error(const char *needle)
{
    if (!strstr(err, needle)) {
        fprintf(stderr, "error message '%s' lacks '%s'\n", err, needle);
        abort();
    }
}

static void test_defaults(void)
{
    CHECK_EQ(parse(NULL), 0);
    CHECK_EQ(opt.action, SBD_RUN);
    CHECK(!strcmp(opt.server.listen_host, "127.0.0.1"));
    CHECK_EQ(opt.server.listen_port, 9092);
    CHECK(opt.server.advertised_host == NULL);
    CHECK(!strcmp(opt.bus.data_dir, "./data"));
    CHECK(opt.metrics_enabled);
    CHECK(!strcmp(opt.metrics_host, "127.0.0.1"));
    CHECK_EQ(opt.metrics_port, 9644);
    CHECK_EQ(opt.bus.shards, 0);
    CHECK(opt.bus.cpus == NULL);
    CHECK_EQ(opt.bus.durability, SB_DURABILITY_BATCH);
    CHECK_EQ(opt.bus.direct_io, -1);
    CHECK_EQ(opt.bus.retention_bytes, -1);
    CHECK_EQ(opt.bus.retention_ms, -1);
    CHECK(opt.server.auto_create_topics);
    CHECK_EQ(opt.server.default_partitions, 1);
    CHECK_EQ(opt.server.max_message_bytes, 1048588);
}

static void test_every_flag(void)
{
    CHECK_EQ(parse("--listen", "[::1]:19092", "--advertised=broker.example:29092",
                   "--data-dir", "/var/lib/sb", "--metrics-listen", "0.0.0.0:0", "--shards",
                   "4", "--cpus", "2,4-5", "--durability", "interval", "--fsync-interval-ms",
                   "250", "--segment-bytes", "1048576", "--retention-bytes", "1000000",
                   "--retention-ms", "-1", "--auto-create-topics", "false",
                   "--default-partitions", "8", "--max-message-bytes", "2000000",
                   "--max-request-bytes", "4000000", "--max-connections", "50",
                   "--direct-io", "off", NULL),
             0);
    CHECK(!strcmp(opt.server.listen_host, "::1"));
    CHECK_EQ(opt.server.listen_port, 19092);
    CHECK(!strcmp(opt.server.advertised_host, "broker.example"));
    CHECK_EQ(opt.server.advertised_port, 29092);
    CHECK(!strcmp(opt.bus.data_dir, "/var/lib/sb"));
    CHECK(opt.metrics_enabled && !strcmp(opt.metrics_host, "0.0.0.0") && opt.metrics_port == 0);
    CHECK_EQ(opt.bus.shards, 4);
    CHECK(opt.bus.cpus);
    /* Three CPUs for four shards: shard i on the (i mod 3)-th. */
    CHECK(opt.bus.cpus[0] == 2 && opt.bus.cpus[1] == 4 && opt.bus.cpus[2] == 5 &&
          opt.bus.cpus[3] == 2);
    CHECK_EQ(opt.bus.durability, SB_DURABILITY_INTERVAL);
    CHECK_EQ(opt.bus.direct_io, 0);
    CHECK_EQ(opt.bus.fsync_interval_ms, 250);
    CHECK_EQ(opt.bus.segment_bytes, 1048576);
    CHECK_EQ(opt.bus.retention_bytes, 1000000);
    CHECK_EQ(opt.bus.retention_ms, -1);
    CHECK(!opt.server.auto_create_topics);
    CHECK_EQ(opt.server.default_partitions, 8);
    CHECK_EQ(opt.server.max_message_bytes, 2000000);
    CHECK_EQ(opt.server.max_request_bytes, 4000000);
    CHECK_EQ(opt.server.max_connections, 50);

    CHECK_EQ(parse("--cpus", "1,3", NULL), 0);
    CHECK_EQ(opt.bus.shards, 2); /* --shards 0 with --cpus: one shard per CPU listed */
    CHECK_EQ(parse("--metrics-listen", "off", NULL), 0);
    CHECK(!opt.metrics_enabled);
    CHECK_EQ(parse("--help", "--bogus-later", NULL), 0); /* --help wins at once */
    CHECK_EQ(opt.action, SBD_HELP);
    CHECK_EQ(parse("--version", NULL), 0);
    CHECK_EQ(opt.action, SBD_VERSION);
    CHECK_EQ(parse("--check-config", NULL), 0);
    CHECK_EQ(opt.action, SBD_CHECK_CONFIG);
    CHECK_EQ(parse("--direct-io", "on", NULL), 0);
    CHECK_EQ(opt.bus.direct_io, 1);
    CHECK_EQ(parse("--direct-io", "auto", NULL), 0);
    CHECK_EQ(opt.bus.direct_io, -1);
}

static void test_bad_flags(void)
{
    static const struct {
        const char *flag, *value, *needle;
    } bad[] = {
        {"--listen", "127.0.0.1", "--listen: bad value '127.0.0.1'"},
        {"--listen", "::1:9092", "brackets"},
        {"--listen", "[::1]9092", "--listen"},
        {"--listen", "host:0", "port from 1"},
        {"--listen", ":9092", "with a host"},
        {"--listen", "host:65536", "65536"},
        {"--advertised", "x:y", "--advertised"},
        {"--metrics-listen", "nowhere", "or off"},
        {"--shards", "-1", "--shards: bad value '-1'"},
        {"--shards", "1025", "0 to 1024"},
        {"--shards", "2x", "2x"},
        {"--shards", "", "--shards"},
        {"--cpus", "0,,1", "--cpus"},
        {"--cpus", "3-1", "--cpus"},
        {"--cpus", "99999", "--cpus"},
        {"--durability", "always", "none, batch or interval"},
        {"--direct-io", "yes", "on, off or auto"},
        {"--fsync-interval-ms", "0", "--fsync-interval-ms"},
        {"--segment-bytes", "100", "4096"},
        {"--retention-bytes", "0", "-1 (unlimited)"},
        {"--retention-ms", "-2", "--retention-ms"},
        {"--auto-create-topics", "yes", "true or false"},
        {"--default-partitions", "0", "--default-partitions"},
        {"--max-message-bytes", "3000000000", "--max-message-bytes"},
        {"--max-connections", "0", "--max-connections"},
        {"--data-dir", "", "--data-dir"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i].flag, bad[i].value, NULL) != -EINVAL) {
            fprintf(stderr, "%s '%s' accepted\n", bad[i].flag, bad[i].value);
            abort();
        }
        expect_error(bad[i].needle);
        CHECK(!strchr(err, '\n'));
    }
    CHECK_EQ(parse("--bogus", NULL), -EINVAL);
    expect_error("'--bogus'");
    CHECK_EQ(parse("-x", NULL), -EINVAL);
    expect_error("'-x'");
    CHECK_EQ(parse("--shards", NULL), -EINVAL);
    expect_error("'--shards' needs a value");
    CHECK_EQ(parse("--version=2", NULL), -EINVAL);
    expect_error("takes no value");
    CHECK_EQ(parse("stray", NULL), -EINVAL);
    expect_error("'stray'");
    CHECK_EQ(parse("--cpus", "0,1,2", "--shards", "2", NULL), -EINVAL);
    expect_error("--cpus lists 3 CPUs but --shards is 2");
    CHECK_EQ(parse("--max-request-bytes", "2000", NULL), -EINVAL);
    expect_error("--max-message-bytes");
}

static void test_config_file(void)
{
    write_conf("; shardbusd settings\n"
               "[shardbusd]\n"
               "listen = 0.0.0.0:9093\n"
               "data-dir = /srv/bus   # inline comments are not allowed with '#'\n");
    /* inih's inline comments start with ';' only: the '#' part is in the value. */
    CHECK_EQ(parse("--config", conf_path, "--check-config", NULL), 0);
    CHECK(!strcmp(opt.bus.data_dir, "/srv/bus   # inline comments are not allowed with '#'"));

    write_conf("shards = 2 ; two shards\n"
               "durability = none\n"
               "[shardbusd]\n"
               "auto-create-topics = false\n"
               "max-connections = 7\n");
    CHECK_EQ(parse("--config", conf_path, NULL), 0);
    CHECK_EQ(opt.bus.shards, 2);
    CHECK_EQ(opt.bus.durability, SB_DURABILITY_NONE);
    CHECK(!opt.server.auto_create_topics);
    CHECK_EQ(opt.server.max_connections, 7);
    CHECK(!strcmp(opt.config_path, conf_path));

    /* Flags override the file, wherever they stand relative to --config. */
    CHECK_EQ(parse("--shards", "3", "--config", conf_path, "--auto-create-topics", "true", NULL),
             0);
    CHECK_EQ(opt.bus.shards, 3);
    CHECK(opt.server.auto_create_topics);
    CHECK_EQ(opt.bus.durability, SB_DURABILITY_NONE); /* from the file */

    write_conf("[shardbusd]\nshards = 2\n\nbogus = 1\n");
    CHECK_EQ(parse("--config", conf_path, NULL), -EINVAL);
    expect_error(conf_path);
    expect_error(":4: unknown key 'bogus'");

    write_conf("shards = many\n");
    CHECK_EQ(parse("--config", conf_path, NULL), -EINVAL);
    expect_error(":1: key 'shards': bad value 'many'");

    write_conf("[kafka]\nshards = 1\n");
    CHECK_EQ(parse("--config", conf_path, NULL), -EINVAL);
    expect_error(":2: key 'shards' in section [kafka]");

    write_conf("shards\n");
    CHECK_EQ(parse("--config", conf_path, NULL), -EINVAL);
    expect_error(":1: syntax error");

    write_conf("config = /etc/other.conf\n"); /* --config is a flag, not a key */
    CHECK_EQ(parse("--config", conf_path, NULL), -EINVAL);
    expect_error("unknown key 'config'");
    write_conf("help = true\n");
    CHECK_EQ(parse("--config", conf_path, NULL), -EINVAL);
    expect_error("unknown key 'help'");

    /* The first error is the one reported. */
    write_conf("a = 1\nb = 2\n");
    CHECK_EQ(parse("--config", conf_path, NULL), -EINVAL);
    expect_error(":1: unknown key 'a'");

    CHECK_EQ(parse("--config", "/nonexistent/shardbusd.conf", NULL), -EINVAL);
    expect_error("--config: cannot read '/nonexistent/shardbusd.conf'");
}

/* --check-config's output, fed back as a config file, gives the same output. */
static void test_print_round_trip(void)
{
    CHECK_EQ(parse("--listen", "[fe80::1]:9000", "--advertised", "10.0.0.1:9000", "--cpus", "0",
                   "--retention-ms", "86400000", "--metrics-listen", "off", NULL),
             0);
    char *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    FILE *f = open_memstream(&first, &first_len);
    sbd_options_print(&opt, f);
    fclose(f);
    write_conf(first);
    CHECK_EQ(parse("--config", conf_path, NULL), 0);
    f = open_memstream(&second, &second_len);
    sbd_options_print(&opt, f);
    fclose(f);
    if (strcmp(first, second)) {
        fprintf(stderr, "round trip differs:\n%s---\n%s", first, second);
        abort();
    }
    CHECK(strstr(first, "listen = [fe80::1]:9000\n"));
    CHECK(strstr(first, "metrics-listen = off\n"));
    free(first);
    free(second);
}

int main(void)
{
    snprintf(conf_path, sizeof(conf_path), "/tmp/test_options.%ld.conf", (long)getpid());
    test_defaults();
    test_every_flag();
    test_bad_flags();
    test_config_file();
    test_print_round_trip();
    unlink(conf_path);
    printf("test_options: ok\n");
    return 0;
}
