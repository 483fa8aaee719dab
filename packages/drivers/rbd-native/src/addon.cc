// N-API binding to librados/librbd for @cinderts/driver-rbd: one cluster connection per backend, every call
// run on the libuv thread pool, results handed back as JSON text (parsed in JS), failures as the negative
// errno librbd returned. Only the calls the driver needs; no image handles leak into JS.
#include <node_api.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

std::string jstr(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char b[8];
          snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + "\"";
}

struct Cluster {
  rados_t rados = nullptr;
  bool connected = false;
  std::mutex mu;
  std::map<std::string, rados_ioctx_t> ioctxs;

  int ioctx(const std::string& pool, rados_ioctx_t* out) {
    std::lock_guard<std::mutex> g(mu);
    auto it = ioctxs.find(pool);
    if (it != ioctxs.end()) {
      *out = it->second;
      return 0;
    }
    rados_ioctx_t io;
    int r = rados_ioctx_create(rados, pool.c_str(), &io);
    if (r < 0) return r;
    ioctxs[pool] = io;
    *out = io;
    return 0;
  }

  void shutdown() {
    std::lock_guard<std::mutex> g(mu);
    for (auto& kv : ioctxs) rados_ioctx_destroy(kv.second);
    ioctxs.clear();
    if (rados) rados_shutdown(rados);
    rados = nullptr;
    connected = false;
  }
};

// RAII image handle
struct Image {
  rbd_image_t img = nullptr;
  ~Image() {
    if (img) rbd_close(img);
  }
};

struct Work {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  Cluster* cluster = nullptr;
  std::string op;
  std::vector<std::string> s;  // string arguments
  std::vector<double> n;       // number arguments
  int rc = 0;
  std::string where;  // which librbd call failed
  std::string out = "null";
};

int open_image(Work* w, const std::string& pool, const std::string& name, bool ro, Image* im, const char* snap = nullptr) {
  rados_ioctx_t io;
  int r = w->cluster->ioctx(pool, &io);
  if (r < 0) {
    w->where = "open pool " + pool;
    return r;
  }
  r = ro ? rbd_open_read_only(io, name.c_str(), &im->img, snap) : rbd_open(io, name.c_str(), &im->img, snap);
  if (r < 0) w->where = "open image " + pool + "/" + name + (snap ? std::string("@") + snap : "");
  return r;
}

int mon_command(Work* w, const std::string& cmd, std::string* out) {
  const char* cmds[] = {cmd.c_str()};
  char* outbuf = nullptr;
  size_t outlen = 0;
  char* outs = nullptr;
  size_t outslen = 0;
  int r = rados_mon_command(w->cluster->rados, cmds, 1, "", 0, &outbuf, &outlen, &outs, &outslen);
  if (r >= 0) out->assign(outbuf ? outbuf : "", outlen);
  else w->where = "mon command " + cmd + ": " + std::string(outs ? outs : "", outslen);
  if (outbuf) rados_buffer_free(outbuf);
  if (outs) rados_buffer_free(outs);
  return r;
}

const char* FEATURES[] = {"layering", "striping", "exclusive-lock", "object-map", "fast-diff", "deep-flatten",
                          "journaling", "data-pool", "operations", "migrating", "non-primary"};

#define CHECK(expr, what)   \
  do {                      \
    int _r = (expr);        \
    if (_r < 0) {           \
      w->where = (what);    \
      return _r;            \
    }                       \
  } while (0)

int run_op(Work* w) {
  const std::string& op = w->op;
  auto& s = w->s;
  if (op == "connect") {
    // s: cluster, user, conf, keyring; n: timeout
    CHECK(rados_create2(&w->cluster->rados, s[0].c_str(), ("client." + s[1]).c_str(), 0), "rados_create2");
    CHECK(rados_conf_read_file(w->cluster->rados, s[2].empty() ? nullptr : s[2].c_str()), "read conf " + s[2]);
    if (!s[3].empty()) CHECK(rados_conf_set(w->cluster->rados, "keyring", s[3].c_str()), "set keyring");
    if (w->n[0] >= 0) {
      std::string t = std::to_string(static_cast<long>(w->n[0]));
      for (const char* k : {"rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"}) {
        CHECK(rados_conf_set(w->cluster->rados, k, t.c_str()), std::string("set ") + k);
      }
    }
    CHECK(rados_connect(w->cluster->rados), "rados_connect");
    w->cluster->connected = true;
    return 0;
  }
  if (!w->cluster->connected) {
    w->where = "cluster connection is closed";
    return -ENOTCONN;
  }
  if (op == "clusterInfo") {
    char fsid[64] = {0};
    CHECK(rados_cluster_fsid(w->cluster->rados, fsid, sizeof fsid), "rados_cluster_fsid");
    std::string mons;
    int r = mon_command(w, "{\"prefix\":\"mon dump\",\"format\":\"json\"}", &mons);
    if (r < 0) return r;
    w->out = "{\"fsid\":" + jstr(fsid) + ",\"monmap\":" + mons + "}";
    return 0;
  }
  if (op == "poolUsage") {
    std::string df, quota;
    int r = mon_command(w, "{\"prefix\":\"df\",\"format\":\"json\"}", &df);
    if (r < 0) return r;
    r = mon_command(w, "{\"prefix\":\"osd pool get-quota\",\"pool\":" + jstr(s[0]) + ",\"format\":\"json\"}", &quota);
    if (r < 0) return r;
    w->out = "{\"df\":" + df + ",\"quota\":" + quota + "}";
    return 0;
  }

  rados_ioctx_t io;
  {
    int r = w->cluster->ioctx(s[0], &io);
    if (r < 0) {
      w->where = "open pool " + s[0];
      return r;
    }
  }

  if (op == "list" || op == "listNames") {
    std::vector<rbd_image_spec_t> specs(64);
    size_t max = specs.size();
    int r;
    while ((r = rbd_list2(io, specs.data(), &max)) == -ERANGE) specs.resize(max);
    if (r < 0) {
      w->where = "rbd_list2";
      return r;
    }
    std::string o = "[";
    bool first = true;
    for (size_t i = 0; i < max && op == "listNames"; i++) {
      o += (first ? "" : ",") + jstr(specs[i].name);
      first = false;
    }
    for (size_t i = 0; i < max && op == "list"; i++) {
      Image im;
      uint64_t size = 0;
      // an image removed while we list is simply not there any more
      if (rbd_open_read_only(io, specs[i].name, &im.img, nullptr) < 0) continue;
      if (rbd_get_size(im.img, &size) < 0) continue;
      o += (first ? "" : ",") + std::string("{\"name\":") + jstr(specs[i].name) + ",\"size\":" + std::to_string(size) + "}";
      first = false;
    }
    rbd_image_spec_list_cleanup(specs.data(), max);
    w->out = o + "]";
    return 0;
  }
  if (op == "create") {
    rbd_image_options_t opts;
    rbd_image_options_create(&opts);
    rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_ORDER, static_cast<uint64_t>(w->n[1]));
    int r = rbd_create4(io, s[1].c_str(), static_cast<uint64_t>(w->n[0]), opts);
    rbd_image_options_destroy(opts);
    if (r < 0) w->where = "rbd_create4 " + s[1];
    return r;
  }
  if (op == "remove") {
    CHECK(rbd_remove(io, s[1].c_str()), "rbd_remove " + s[1]);
    return 0;
  }
  if (op == "rename") {
    CHECK(rbd_rename(io, s[1].c_str(), s[2].c_str()), "rbd_rename " + s[1]);
    return 0;
  }
  if (op == "info") {
    Image im;
    int r = open_image(w, s[0], s[1], true, &im);
    if (r < 0) return r;
    rbd_image_info_t st;
    uint64_t features = 0;
    CHECK(rbd_stat(im.img, &st, sizeof st), "rbd_stat");
    CHECK(rbd_get_features(im.img, &features), "rbd_get_features");
    int nsnaps = 0;
    {
      std::vector<rbd_snap_info_t> snaps(16);
      int max = static_cast<int>(snaps.size());
      while ((r = rbd_snap_list(im.img, snaps.data(), &max)) == -ERANGE) snaps.resize(max);
      if (r < 0) {
        w->where = "rbd_snap_list";
        return r;
      }
      nsnaps = r;
      rbd_snap_list_end(snaps.data());
    }
    std::string feats = "[";
    for (int b = 0; b < 11; b++) {
      if (features & (1ull << b)) feats += (feats.size() > 1 ? "," : "") + jstr(FEATURES[b]);
    }
    feats += "]";
    std::string parent;
    rbd_linked_image_spec_t pimg;
    rbd_snap_spec_t psnap;
    r = rbd_get_parent(im.img, &pimg, &psnap);
    if (r == 0) {
      parent = ",\"parent\":{\"pool\":" + jstr(pimg.pool_name) + ",\"image\":" + jstr(pimg.image_name) +
               ",\"snapshot\":" + jstr(psnap.name) + "}";
      rbd_linked_image_spec_cleanup(&pimg);
      rbd_snap_spec_cleanup(&psnap);
    } else if (r != -ENOENT) {
      w->where = "rbd_get_parent";
      return r;
    }
    w->out = "{\"name\":" + jstr(s[1]) + ",\"size\":" + std::to_string(st.size) + ",\"order\":" + std::to_string(st.order) +
             ",\"features\":" + feats + ",\"snapshot_count\":" + std::to_string(nsnaps) + parent + "}";
    return 0;
  }
  if (op == "metaSet") {
    // Image metadata written by the rbd object class on the image header, as rbd_metadata_set does, without
    // opening the image: an open (header refresh, watch, close) costs ~30 ms, two object-class calls ~8 ms.
    // The driver uses it to tag images it has just created, which no other client has open to be notified.
    char idbuf[256];
    int n = rados_exec(io, ("rbd_id." + s[1]).c_str(), "rbd", "get_id", nullptr, 0, idbuf, sizeof idbuf);
    if (n < 0) {
      w->where = "get_id " + s[1];
      return n;
    }
    // Ceph encodings, little-endian: string = u32 length + bytes; map<string, bufferlist> = u32 count + pairs.
    auto u32 = [](const char* p) {
      return static_cast<uint32_t>(static_cast<unsigned char>(p[0])) | static_cast<uint32_t>(static_cast<unsigned char>(p[1])) << 8 |
             static_cast<uint32_t>(static_cast<unsigned char>(p[2])) << 16 | static_cast<uint32_t>(static_cast<unsigned char>(p[3])) << 24;
    };
    if (n < 4 || u32(idbuf) > static_cast<uint32_t>(n - 4)) {
      w->where = "get_id " + s[1] + ": malformed reply";
      return -EIO;
    }
    std::string id(idbuf + 4, u32(idbuf));
    std::string in;
    auto put = [&in](uint32_t v) {
      for (int i = 0; i < 4; i++) in.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    put(1);
    put(static_cast<uint32_t>(s[2].size()));
    in += s[2];
    put(static_cast<uint32_t>(s[3].size()));
    in += s[3];
    char out[16];
    n = rados_exec(io, ("rbd_header." + id).c_str(), "rbd", "metadata_set", in.data(), in.size(), out, sizeof out);
    if (n < 0) {
      w->where = "metadata_set on rbd_header." + id;
      return n;
    }
    return 0;
  }
  if (op == "resize" || op == "flatten" || op == "snapCreate" || op == "snapProtect" || op == "snapUnprotect" ||
      op == "snapRemove") {
    Image im;
    int r = open_image(w, s[0], s[1], false, &im);
    if (r < 0) return r;
    if (op == "resize") CHECK(rbd_resize(im.img, static_cast<uint64_t>(w->n[0])), "rbd_resize");
    else if (op == "flatten") CHECK(rbd_flatten(im.img), "rbd_flatten");
    else if (op == "snapCreate") CHECK(rbd_snap_create(im.img, s[2].c_str()), "rbd_snap_create " + s[2]);
    else if (op == "snapProtect") CHECK(rbd_snap_protect(im.img, s[2].c_str()), "rbd_snap_protect " + s[2]);
    else if (op == "snapUnprotect") CHECK(rbd_snap_unprotect(im.img, s[2].c_str()), "rbd_snap_unprotect " + s[2]);
    else if (op == "snapRemove") CHECK(rbd_snap_remove(im.img, s[2].c_str()), "rbd_snap_remove " + s[2]);
    return 0;
  }
  if (op == "copy") {
    Image im;
    int r = open_image(w, s[0], s[1], true, &im);
    if (r < 0) return r;
    CHECK(rbd_copy(im.img, io, s[2].c_str()), "rbd_copy " + s[2]);
    return 0;
  }
  if (op == "snapList") {
    Image im;
    int r = open_image(w, s[0], s[1], true, &im);
    if (r < 0) return r;
    std::vector<rbd_snap_info_t> snaps(16);
    int max = static_cast<int>(snaps.size());
    while ((r = rbd_snap_list(im.img, snaps.data(), &max)) == -ERANGE) snaps.resize(max);
    if (r < 0) {
      w->where = "rbd_snap_list";
      return r;
    }
    std::string o = "[";
    for (int i = 0; i < r; i++) {
      int prot = 0;
      rbd_snap_is_protected(im.img, snaps[i].name, &prot);
      o += (i ? "," : "") + std::string("{\"name\":") + jstr(snaps[i].name) + ",\"size\":" + std::to_string(snaps[i].size) +
           ",\"protected\":" + (prot ? "true" : "false") + "}";
    }
    rbd_snap_list_end(snaps.data());
    w->out = o + "]";
    return 0;
  }
  if (op == "clone") {
    // s: parentPool, parentImage, parentSnap, childPool, childImage; n: order
    rados_ioctx_t cio;
    int r = w->cluster->ioctx(s[3], &cio);
    if (r < 0) {
      w->where = "open pool " + s[3];
      return r;
    }
    rbd_image_options_t opts;
    rbd_image_options_create(&opts);
    rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_ORDER, static_cast<uint64_t>(w->n[0]));
    r = rbd_clone3(io, s[1].c_str(), s[2].c_str(), cio, s[4].c_str(), opts);
    rbd_image_options_destroy(opts);
    if (r < 0) w->where = "rbd_clone3 " + s[4];
    return r;
  }
  if (op == "children") {
    Image im;
    int r = open_image(w, s[0], s[1], true, &im, s[2].c_str());
    if (r < 0) return r;
    std::vector<rbd_linked_image_spec_t> kids(16);
    size_t max = kids.size();
    while ((r = rbd_list_children3(im.img, kids.data(), &max)) == -ERANGE) kids.resize(max);
    if (r < 0) {
      w->where = "rbd_list_children3";
      return r;
    }
    std::string o = "[";
    bool first = true;
    for (size_t i = 0; i < max; i++) {
      if (kids[i].trash) continue;
      o += (first ? "" : ",") + std::string("{\"pool\":") + jstr(kids[i].pool_name) + ",\"image\":" + jstr(kids[i].image_name) + "}";
      first = false;
    }
    rbd_linked_image_spec_list_cleanup(kids.data(), max);
    w->out = o + "]";
    return 0;
  }
  if (op == "metaGet") {
    Image im;
    int r = open_image(w, s[0], s[1], true, &im);
    if (r < 0) return r;
    std::vector<char> buf(256);
    size_t len = buf.size();
    while ((r = rbd_metadata_get(im.img, s[2].c_str(), buf.data(), &len)) == -ERANGE) {
      buf.resize(len);
    }
    if (r == -ENOENT) {
      w->out = "null";
      return 0;
    }
    if (r < 0) {
      w->where = "rbd_metadata_get";
      return r;
    }
    w->out = jstr(std::string(buf.data(), strnlen(buf.data(), len)));
    return 0;
  }
  w->where = "unknown op " + op;
  return -EINVAL;
}

void Execute(napi_env, void* data) {
  auto* w = static_cast<Work*>(data);
  w->rc = run_op(w);
}

void Complete(napi_env env, napi_status, void* data) {
  auto* w = static_cast<Work*>(data);
  if (w->rc < 0) {
    napi_value msg, err, errno_v, where_v;
    std::string text = w->op + ": " + w->where + ": " + strerror(-w->rc);
    napi_create_string_utf8(env, text.c_str(), text.size(), &msg);
    napi_create_error(env, nullptr, msg, &err);
    napi_create_int32(env, -w->rc, &errno_v);
    napi_set_named_property(env, err, "errno", errno_v);
    napi_create_string_utf8(env, w->where.c_str(), w->where.size(), &where_v);
    napi_set_named_property(env, err, "where", where_v);
    napi_reject_deferred(env, w->deferred, err);
  } else {
    napi_value out;
    napi_create_string_utf8(env, w->out.c_str(), w->out.size(), &out);
    napi_resolve_deferred(env, w->deferred, out);
  }
  napi_delete_async_work(env, w->work);
  delete w;
}

void Finalize(napi_env, void* data, void*) {
  auto* c = static_cast<Cluster*>(data);
  c->shutdown();
  delete c;
}

std::string get_string(napi_env env, napi_value v) {
  size_t len = 0;
  napi_get_value_string_utf8(env, v, nullptr, 0, &len);
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, v, &s[0], len + 1, &len);
  return s;
}

// newCluster() -> external handle
napi_value NewCluster(napi_env env, napi_callback_info) {
  napi_value ext;
  napi_create_external(env, new Cluster(), Finalize, nullptr, &ext);
  return ext;
}

// call(handle, op, strings[], numbers[]) -> Promise<string>
napi_value Call(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 4) {
    napi_throw_type_error(env, nullptr, "call(handle, op, strings, numbers)");
    return nullptr;
  }
  auto* w = new Work();
  napi_get_value_external(env, argv[0], reinterpret_cast<void**>(&w->cluster));
  w->op = get_string(env, argv[1]);
  uint32_t len = 0;
  napi_get_array_length(env, argv[2], &len);
  for (uint32_t i = 0; i < len; i++) {
    napi_value e;
    napi_get_element(env, argv[2], i, &e);
    w->s.push_back(get_string(env, e));
  }
  napi_get_array_length(env, argv[3], &len);
  for (uint32_t i = 0; i < len; i++) {
    napi_value e;
    double d = 0;
    napi_get_element(env, argv[3], i, &e);
    napi_get_value_double(env, e, &d);
    w->n.push_back(d);
  }
  napi_value promise, name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, "cinderts-rbd", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, nullptr, name, Execute, Complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

// shutdown(handle): JS calls it only when no call is in flight
napi_value Shutdown(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Cluster* c = nullptr;
  napi_get_value_external(env, argv[0], reinterpret_cast<void**>(&c));
  if (c) c->shutdown();
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"newCluster", nullptr, NewCluster, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"call", nullptr, Call, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"shutdown", nullptr, Shutdown, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
