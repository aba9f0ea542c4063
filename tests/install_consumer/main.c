/* A program outside the tree, built against an installed shardbus (pkg-config or
 * find_package): publish one event and read it back. */
#include <shardbus.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    struct sb_config cfg;
    struct sb_bus *bus;
    struct sb_producer *p;
    struct sb_consumer *c;
    struct sb_event ev;
    sb_config_init(&cfg);
    cfg.shards = 1;
    if (sb_bus_open(&cfg, &bus) || sb_topic_create(bus, "installed", 1) ||
        sb_subscribe(bus, "installed", SB_OFFSET_END, &c) || sb_producer_open(bus, &p) ||
        sb_publish(p, "installed", "k", 1, "hello", 5) || sb_poll(c, &ev, 1, 5000) != 1 ||
        ev.value_len != 5 || memcmp(ev.value, "hello", 5) != 0) {
        fprintf(stderr, "install_consumer: the installed library did not deliver\n");
        return 1;
    }
    sb_producer_close(p);
    sb_consumer_close(c);
    printf("install_consumer: shardbus %s works\n", sb_version_string());
    return sb_bus_close(bus) ? 1 : 0;
}
