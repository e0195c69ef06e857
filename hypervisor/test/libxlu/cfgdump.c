/*
 * cfgdump: reads xl.cfg files with libxlutil, the parser xl itself uses, and
 * prints what xl would see, one JSON line per file:
 *   {"ok":true,"settings":{...},"disk":[...],"pci":[...]}
 *   {"ok":false,"errno":22,"report":"<libxlu's messages>"}
 * Settings map each name to its value as libxlu stores it (numbers too are
 * kept as the text written, which is what xlu_cfg_get_string returns), lists
 * nested as written. Each string in a `disk` list is parsed with
 * xlu_disk_parse and each in a `pci` list with xlu_pci_parse_spec_string,
 * printing the libxl device fields that result.
 *
 * String bytes outside printable ASCII are printed as \u00XX, one per byte,
 * so the reader gets the exact bytes back (Buffer.from(s, "latin1")).
 *
 * Build: cc -o cfgdump cfgdump.c -lxlutil -lxenlight
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxl.h>
#include <libxlutil.h>

static void str(const char *s) {
    if (!s) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void value(XLU_Config *cfg, XLU_ConfigValue *v) {
    if (xlu_cfg_value_type(v) == XLU_STRING) {
        char *s;
        xlu_cfg_value_get_string(cfg, v, &s, 1);
        str(s);
        return;
    }
    XLU_ConfigList *list;
    xlu_cfg_value_get_list(cfg, v, &list, 1);
    putchar('[');
    XLU_ConfigValue *item;
    for (int i = 0; (item = xlu_cfg_get_listitem2(list, i)); i++) {
        if (i) putchar(',');
        value(cfg, item);
    }
    putchar(']');
}

static void defbool(const char *k, libxl_defbool b) {
    printf(",\"%s\":", k);
    str(libxl_defbool_to_string(b));
}

static void disk(XLU_Config *cfg, const char *spec) {
    libxl_device_disk d;
    libxl_device_disk_init(&d);
    int rc = xlu_disk_parse(cfg, 1, &spec, &d);
    printf("{\"rc\":%d,\"pdev_path\":", rc);
    str(d.pdev_path);
    fputs(",\"vdev\":", stdout);
    str(d.vdev);
    fputs(",\"format\":", stdout);
    str(libxl_disk_format_to_string(d.format));
    fputs(",\"backend\":", stdout);
    str(libxl_disk_backend_to_string(d.backend));
    fputs(",\"backend_domname\":", stdout);
    str(d.backend_domname);
    fputs(",\"script\":", stdout);
    str(d.script);
    printf(",\"readwrite\":%d,\"is_cdrom\":%d,\"removable\":%d,\"direct_io_safe\":%d", d.readwrite, d.is_cdrom,
           d.removable, d.direct_io_safe);
    fputs(",\"specification\":", stdout);
    str(libxl_disk_specification_to_string(d.specification));
    defbool("discard_enable", d.discard_enable);
    defbool("colo_enable", d.colo_enable);
    defbool("trusted", d.trusted);
    fputs(",\"colo_host\":", stdout);
    str(d.colo_host);
    printf(",\"colo_port\":%d,\"colo_export\":", d.colo_port);
    str(d.colo_export);
    fputs(",\"active_disk\":", stdout);
    str(d.active_disk);
    fputs(",\"hidden_disk\":", stdout);
    str(d.hidden_disk);
    putchar('}');
    libxl_device_disk_dispose(&d);
}

static void pci(XLU_Config *cfg, const char *spec) {
    libxl_device_pci p;
    libxl_device_pci_init(&p);
    int rc = xlu_pci_parse_spec_string(cfg, &p, spec);
    printf("{\"rc\":%d,\"domain\":%d,\"bus\":%u,\"dev\":%u,\"func\":%u,\"vdevfn\":%u,\"vfunc_mask\":%u,"
           "\"msitranslate\":%d,\"power_mgmt\":%d,\"permissive\":%d,\"seize\":%d,\"rdm_policy\":",
           rc, p.domain, p.bus, p.dev, p.func, p.vdevfn, p.vfunc_mask, p.msitranslate, p.power_mgmt, p.permissive,
           p.seize);
    str(libxl_rdm_reserve_policy_to_string(p.rdm_policy));
    fputs(",\"name\":", stdout);
    str(p.name);
    putchar('}');
    libxl_device_pci_dispose(&p);
}

/* Parses each string of the list setting `key` with `fn`, as xl does. */
static void devices(XLU_Config *cfg, const char *key, void (*fn)(XLU_Config *, const char *)) {
    XLU_ConfigList *list;
    int n;
    if (xlu_cfg_get_list(cfg, key, &list, &n, 1)) return;
    printf(",\"%s\":[", key);
    for (int i = 0; i < n; i++) {
        if (i) putchar(',');
        const char *s = xlu_cfg_get_listitem(list, i);
        if (s)
            fn(cfg, s);
        else
            fputs("null", stdout);
    }
    putchar(']');
}

static int is_ident(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
}

static void dump(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("{\"ok\":false,\"errno\":%d,\"report\":\"cannot open\"}\n", errno);
        return;
    }
    char *data = 0;
    size_t len = 0;
    FILE *buf = open_memstream(&data, &len);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) fwrite(chunk, 1, got, buf);
    fclose(f);
    fclose(buf);

    char *report = 0;
    size_t report_len = 0;
    FILE *rep = open_memstream(&report, &report_len);
    XLU_Config *cfg = xlu_cfg_init(rep, path);
    /* xl reads the whole file and hands it to xlu_cfg_readdata (parse_config_data). */
    int e = xlu_cfg_readdata(cfg, data, (int)len);
    fflush(rep);
    if (e) {
        printf("{\"ok\":false,\"errno\":%d,\"report\":", e);
        str(report);
        puts("}");
    } else {
        /* libxlutil has no iterator over settings: every setting's name is an
         * IDENT token ([a-z][._0-9a-z]*, longest match) somewhere in the text,
         * so looking up the longest such run from every position where one
         * can start finds them all (strings and comments only add misses). */
        fputs("{\"ok\":true,\"settings\":{", stdout);
        char **seen = calloc(len + 1, sizeof(char *));
        size_t nseen = 0;
        int printed = 0;
        for (size_t i = 0; i < len; i++) {
            if (data[i] < 'a' || data[i] > 'z') continue;
            size_t j = i;
            while (j < len && is_ident(data[j])) j++;
            char *name = strndup(data + i, j - i);
            int dup = 0;
            for (size_t k = 0; k < nseen && !dup; k++) dup = !strcmp(seen[k], name);
            if (dup) {
                free(name);
                continue;
            }
            seen[nseen++] = name;
            const char *s;
            XLU_ConfigList *list;
            int n;
            int is_string = !xlu_cfg_get_string(cfg, name, &s, 1);
            if (!is_string && xlu_cfg_get_list(cfg, name, &list, &n, 1)) continue;
            if (printed++) putchar(',');
            str(name);
            putchar(':');
            if (is_string) {
                str(s);
                continue;
            }
            putchar('[');
            XLU_ConfigValue *item;
            for (int k = 0; (item = xlu_cfg_get_listitem2(list, k)); k++) {
                if (k) putchar(',');
                value(cfg, item);
            }
            putchar(']');
        }
        putchar('}');
        for (size_t k = 0; k < nseen; k++) free(seen[k]);
        free(seen);
        devices(cfg, "disk", disk);
        devices(cfg, "pci", pci);
        fputs(",\"report\":", stdout);
        fflush(rep);
        str(report);
        puts("}");
    }
    xlu_cfg_destroy(cfg);
    fclose(rep);
    free(report);
    free(data);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs("usage: cfgdump FILE...\n", stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        dump(argv[i]);
        fflush(stdout);
    }
    return 0;
}
