//! Kubernetes names for addresses, from `kubectl get pods,services,endpointslices,nodes -A
//! -o json`: a pod IP, a service VIP or a node address becomes "pod default/web-7d9f8",
//! "svc default/api", "node node-1". Every address gets at most one name, picked by a fixed
//! order of precedence ([`Names`]) so that a capture reads the same whatever the order of the
//! file; a pod behind a service (through an EndpointSlice) carries that service's name. Only
//! the few fields needed are read; other fields are ignored, other kinds ignored and counted.

use crate::units::{Endpoint, codes};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

codes! {
    /// What an address is in the cluster.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Kind {
        /// A pod's own address (`status.podIPs`), or a pod an EndpointSlice names.
        Pod = ("pod", "a pod's address"),
        /// A service's cluster IP, load-balancer IP or external IP.
        Service = ("service", "a service's virtual IP"),
        /// A node's InternalIP or ExternalIP (also what hostNetwork pods use).
        Node = ("node", "a node's address"),
        /// An EndpointSlice address with no pod behind it: the backend of a service without
        /// a selector (a database outside the cluster, the API server of `kubernetes`).
        Endpoint = ("endpoint", "a service backend that is no pod"),
    }
}

/// The name of one address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Name {
    pub kind: Kind,
    /// None for nodes.
    pub namespace: Option<String>,
    /// The pod, service or node; for [`Kind::Endpoint`], the service it backs.
    pub name: String,
    /// Pods: the node they run on (`spec.nodeName`, or the EndpointSlice's `nodeName`).
    pub node: Option<String>,
    /// Pods (and endpoints): the service, in the same namespace, whose EndpointSlice lists
    /// this address. Of several, the first by name, unless the port tells which
    /// ([`Names::get_endpoint`]).
    pub service: Option<String>,
}

impl Name {
    /// Short: "pod default/web-7d9f8", "svc default/api", "node node-1", "ep default/db".
    /// The prefixes are kubectl's own short names (`kubectl get svc`, `ep`), at most four
    /// characters, so a label fits beside an address in an 80-column table. The namespace is
    /// always there (names repeat across namespaces, and it is what `kubectl -n` needs), the
    /// name never shortened (a generated pod name cut short names no pod). The node and the
    /// service are left to the caller ("... on node-2", "→ svc default/api").
    pub fn label(&self) -> String {
        let prefix = match self.kind {
            Kind::Pod => "pod",
            Kind::Service => "svc",
            Kind::Node => "node",
            Kind::Endpoint => "ep",
        };
        match &self.namespace {
            Some(ns) => format!("{prefix} {ns}/{}", self.name),
            None => format!("{prefix} {}", self.name),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// How much of the file was used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pods: usize,
    pub services: usize,
    pub endpoint_slices: usize,
    pub nodes: usize,
    /// Objects of other kinds (Deployment, ConfigMap, ...): ignored.
    pub ignored_objects: usize,
    /// Addresses that do not parse as IP addresses (those of an FQDN EndpointSlice).
    pub not_ip: usize,
}

/// Every address of the file with its name.
///
/// When several objects claim one address, the first of these wins: a service; a pod that
/// has not finished (phase other than Succeeded/Failed); a node; a pod known only from an
/// EndpointSlice's `targetRef`; an EndpointSlice address with no pod; a finished pod (its IP
/// may since have been given to another). Between equals, the first by namespace and name.
/// A hostNetwork pod's IP is its node's, so it never names an address alone: the node does;
/// it is found through its ports ([`Names::get_endpoint`]).
#[derive(Clone, Debug, Default)]
pub struct Names {
    by_ip: HashMap<IpAddr, Name>,
    /// Only where the port names something else than the address alone: a NodePort or a
    /// hostPort on a node address, a hostNetwork pod's port, a pod port that belongs to
    /// another service than [`Name::service`].
    by_endpoint: HashMap<Endpoint, Name>,
    counts: Counts,
}

impl Names {
    pub fn from_file(path: &Path) -> Result<Names, K8sError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| K8sError {
            file: file.clone(),
            kind: K8sErrorKind::Io {
                message: e.to_string(),
            },
        })?;
        Names::from_json(&text, &file)
    }

    /// `text` is one JSON document or several one after another (kubectl run twice into one
    /// file); `file` names it in errors.
    pub fn from_json(text: &str, file: &str) -> Result<Names, K8sError> {
        if text.trim().is_empty() {
            return Err(K8sError {
                file: file.to_string(),
                kind: K8sErrorKind::Empty,
            });
        }
        let mut objects = Objects::default();
        for doc in serde_json::Deserializer::from_str(text).into_iter::<Object>() {
            let doc = doc.map_err(|e| K8sError::from_json(file, &e))?;
            objects.add(doc);
        }
        Ok(objects.names())
    }

    /// The name of an address, whatever the port.
    pub fn get(&self, ip: IpAddr) -> Option<&Name> {
        self.by_ip.get(&ip)
    }

    /// The name of an address and port: where the port tells more (a NodePort, a
    /// hostNetwork pod, the service a pod's port belongs to), that; else [`Names::get`].
    pub fn get_endpoint(&self, ep: Endpoint) -> Option<&Name> {
        self.by_endpoint.get(&ep).or_else(|| self.get(ep.ip))
    }

    /// [`Name::label`] of the address.
    pub fn label(&self, ip: IpAddr) -> Option<String> {
        self.get(ip).map(Name::label)
    }

    /// Addresses named.
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }
}

/// Why a `--k8s` file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sError {
    pub file: String,
    pub kind: K8sErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum K8sErrorKind {
    /// The file could not be read (missing, not UTF-8, ...).
    Io { message: String },
    /// Nothing but white space.
    Empty,
    /// Not JSON: a syntax error, or the text ends inside a value.
    NotJson {
        line: usize,
        column: usize,
        detail: String,
    },
    /// JSON, but not a Kubernetes object or List (no `kind`, a field of the wrong type).
    NotKubectl {
        line: usize,
        column: usize,
        detail: String,
    },
}

impl K8sError {
    fn from_json(file: &str, e: &serde_json::Error) -> K8sError {
        // serde_json's message ends with its own " at line L column C".
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let detail = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
        let (line, column) = (e.line(), e.column());
        let kind = if e.is_data() {
            K8sErrorKind::NotKubectl {
                line,
                column,
                detail,
            }
        } else {
            K8sErrorKind::NotJson {
                line,
                column,
                detail,
            }
        };
        K8sError {
            file: file.to_string(),
            kind,
        }
    }
}

impl fmt::Display for K8sError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = &self.file;
        match &self.kind {
            K8sErrorKind::Io { message } => write!(f, "{file}: cannot read: {message}"),
            K8sErrorKind::Empty => write!(
                f,
                "{file}: empty; expected the output of kubectl get pods,services,endpointslices,nodes -A -o json"
            ),
            K8sErrorKind::NotJson {
                line,
                column,
                detail,
            } => write!(
                f,
                "{file}: line {line}, column {column}: not JSON: {detail}"
            ),
            K8sErrorKind::NotKubectl {
                line,
                column,
                detail,
            } => write!(
                f,
                "{file}: line {line}, column {column}: not a Kubernetes object or List as kubectl -o json prints it: {detail}"
            ),
        }
    }
}

impl std::error::Error for K8sError {}

// ---- What is read of each object (everything else is skipped by serde) ----

/// One object of the file, by its `kind`. The List kinds nest (a List of Lists).
#[derive(Deserialize)]
#[serde(tag = "kind")]
enum Object {
    #[serde(alias = "PodList", alias = "ServiceList", alias = "EndpointSliceList")]
    #[serde(alias = "NodeList")]
    List {
        #[serde(default, deserialize_with = "nullable")]
        items: Vec<Object>,
    },
    Pod(Pod),
    Service(Service),
    EndpointSlice(EndpointSlice),
    Node(Node),
    #[serde(other)]
    Other,
}

/// `null` read as the default, as Go's JSON encoder writes empty lists and maps.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Meta {
    #[serde(deserialize_with = "nullable")]
    name: String,
    namespace: Option<String>,
    #[serde(deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Pod {
    metadata: Meta,
    spec: PodSpec,
    status: PodStatus,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PodSpec {
    node_name: Option<String>,
    #[serde(deserialize_with = "nullable")]
    host_network: bool,
    #[serde(deserialize_with = "nullable")]
    containers: Vec<Container>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Container {
    #[serde(deserialize_with = "nullable")]
    ports: Vec<ContainerPort>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ContainerPort {
    container_port: Option<u16>,
    host_port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PodStatus {
    phase: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(rename = "podIPs", deserialize_with = "nullable")]
    pod_ips: Vec<IpField>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IpField {
    ip: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Service {
    metadata: Meta,
    spec: ServiceSpec,
    status: ServiceStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ServiceSpec {
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs", deserialize_with = "nullable")]
    cluster_ips: Vec<String>,
    #[serde(rename = "externalIPs", deserialize_with = "nullable")]
    external_ips: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    ports: Vec<ServicePort>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ServicePort {
    node_port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ServiceStatus {
    load_balancer: LoadBalancer,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoadBalancer {
    #[serde(deserialize_with = "nullable")]
    ingress: Vec<IpField>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EndpointSlice {
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    endpoints: Vec<SliceEndpoint>,
    #[serde(deserialize_with = "nullable")]
    ports: Vec<SlicePort>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SliceEndpoint {
    #[serde(deserialize_with = "nullable")]
    addresses: Vec<String>,
    node_name: Option<String>,
    target_ref: Option<ObjectRef>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ObjectRef {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SlicePort {
    /// Null in a slice means every port.
    port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Node {
    metadata: Meta,
    status: NodeStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NodeStatus {
    #[serde(deserialize_with = "nullable")]
    addresses: Vec<NodeAddress>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NodeAddress {
    #[serde(rename = "type")]
    kind: String,
    address: String,
}

// ---- From objects to names ----

/// Precedence of a claim on an address, highest first (see [`Names`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    FinishedPod,
    Endpoint,
    SlicePod,
    Node,
    Pod,
    Service,
}

/// The best claim on each key so far: higher rank, then first by (namespace, name), so the
/// winner does not depend on the order of the file.
struct Claims<K>(HashMap<K, (Rank, Name)>);

impl<K> Default for Claims<K> {
    fn default() -> Self {
        Claims(HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq> Claims<K> {
    fn claim(&mut self, key: K, rank: Rank, name: &Name) {
        let better = |(r, n): &(Rank, Name)| {
            rank > *r || (rank == *r && (&name.namespace, &name.name) < (&n.namespace, &n.name))
        };
        match self.0.get(&key) {
            Some(old) if !better(old) => {}
            _ => {
                self.0.insert(key, (rank, name.clone()));
            }
        }
    }

    fn into_names(self) -> HashMap<K, Name> {
        self.0.into_iter().map(|(k, (_, n))| (k, n)).collect()
    }
}

/// A service an EndpointSlice lists an address under, on one port (None: every port).
struct Backend {
    namespace: Option<String>,
    service: String,
    /// The slice's `targetRef` pod, (namespace, name).
    pod: Option<(Option<String>, String)>,
    port: Option<u16>,
}

/// The objects of interest of a file, from every List and document in it.
#[derive(Default)]
struct Objects {
    pods: Vec<Pod>,
    services: Vec<Service>,
    slices: Vec<EndpointSlice>,
    nodes: Vec<Node>,
    ignored: usize,
}

impl Objects {
    fn add(&mut self, object: Object) {
        match object {
            Object::List { items } => items.into_iter().for_each(|o| self.add(o)),
            Object::Pod(p) => self.pods.push(p),
            Object::Service(s) => self.services.push(s),
            Object::EndpointSlice(s) => self.slices.push(s),
            Object::Node(n) => self.nodes.push(n),
            Object::Other => self.ignored += 1,
        }
    }

    /// Nodes first (NodePorts and hostPorts are on their addresses), slices last (they name
    /// what pods and nodes did not, and know which pods are hostNetwork).
    fn names(&self) -> Names {
        let mut b = Build::default();
        self.nodes.iter().for_each(|n| b.node(n));
        self.services.iter().for_each(|s| b.service(s));
        self.pods.iter().for_each(|p| b.pod(p));
        self.slices.iter().for_each(|s| b.slice(s));
        let not_ip = b.not_ip;
        let (by_ip, by_endpoint) = b.finish();
        Names {
            by_ip,
            by_endpoint,
            counts: Counts {
                pods: self.pods.len(),
                services: self.services.len(),
                endpoint_slices: self.slices.len(),
                nodes: self.nodes.len(),
                ignored_objects: self.ignored,
                not_ip,
            },
        }
    }
}

#[derive(Default)]
struct Build<'a> {
    by_ip: Claims<IpAddr>,
    by_ep: Claims<Endpoint>,
    node_ips: HashMap<&'a str, Vec<IpAddr>>,
    /// (namespace, name) of hostNetwork pods.
    host_network: HashSet<(Option<&'a str>, &'a str)>,
    backends: HashMap<IpAddr, Vec<Backend>>,
    not_ip: usize,
}

impl<'a> Build<'a> {
    fn ip(&mut self, s: &str) -> Option<IpAddr> {
        let parsed = s.parse::<IpAddr>().ok();
        self.not_ip += usize::from(parsed.is_none() && !s.is_empty());
        parsed
    }

    fn node(&mut self, node: &'a Node) {
        let name = Name {
            kind: Kind::Node,
            namespace: None,
            name: node.metadata.name.clone(),
            node: None,
            service: None,
        };
        for a in &node.status.addresses {
            if a.kind != "InternalIP" && a.kind != "ExternalIP" {
                continue;
            }
            if let Some(addr) = self.ip(&a.address) {
                self.by_ip.claim(addr, Rank::Node, &name);
                let ips = self.node_ips.entry(&node.metadata.name).or_default();
                ips.push(addr);
            }
        }
    }

    fn service(&mut self, svc: &'a Service) {
        let name = Name {
            kind: Kind::Service,
            namespace: svc.metadata.namespace.clone(),
            name: svc.metadata.name.clone(),
            node: None,
            service: None,
        };
        let spec = &svc.spec;
        let vips = (spec.cluster_ip.iter().chain(&spec.cluster_ips))
            .filter(|s| s.as_str() != "None")
            .chain(&spec.external_ips)
            .chain(svc.status.load_balancer.ingress.iter().flat_map(|i| &i.ip));
        for vip in vips {
            if let Some(addr) = self.ip(vip) {
                self.by_ip.claim(addr, Rank::Service, &name);
            }
        }
        // A NodePort is the service on every node's addresses.
        for port in spec.ports.iter().filter_map(|p| p.node_port) {
            for &ip in self.node_ips.values().flatten() {
                self.by_ep
                    .claim(Endpoint { ip, port }, Rank::Service, &name);
            }
        }
    }

    fn pod(&mut self, pod: &'a Pod) {
        let meta = &pod.metadata;
        let name = Name {
            kind: Kind::Pod,
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
            node: pod.spec.node_name.clone(),
            service: None,
        };
        let finished = matches!(pod.status.phase.as_deref(), Some("Succeeded" | "Failed"));
        let rank = if finished {
            Rank::FinishedPod
        } else {
            Rank::Pod
        };
        let status = &pod.status;
        let mut addrs: Vec<IpAddr> = (status.pod_ip.iter())
            .chain(status.pod_ips.iter().flat_map(|i| &i.ip))
            .filter_map(|s| self.ip(s))
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        let ports = pod.spec.containers.iter().flat_map(|c| &c.ports);
        if pod.spec.host_network {
            // Its addresses are its node's: it is named only with one of its ports.
            self.host_network
                .insert((meta.namespace.as_deref(), &meta.name));
            for port in ports.filter_map(|p| p.container_port) {
                for &ip in &addrs {
                    self.by_ep.claim(Endpoint { ip, port }, rank, &name);
                }
            }
            return;
        }
        for &addr in &addrs {
            self.by_ip.claim(addr, rank, &name);
        }
        let on_node = pod.spec.node_name.as_deref();
        let node_ips = on_node
            .and_then(|n| self.node_ips.get(n))
            .into_iter()
            .flatten();
        for &ip in node_ips {
            for port in ports.clone().filter_map(|p| p.host_port) {
                self.by_ep.claim(Endpoint { ip, port }, rank, &name);
            }
        }
    }

    fn slice(&mut self, slice: &'a EndpointSlice) {
        let meta = &slice.metadata;
        let Some(service) = meta.labels.get("kubernetes.io/service-name") else {
            return;
        };
        let ports: Vec<Option<u16>> = if slice.ports.is_empty() {
            vec![None]
        } else {
            slice.ports.iter().map(|p| p.port).collect()
        };
        for ep in &slice.endpoints {
            let target = ep.target_ref.as_ref().filter(|t| {
                t.kind.as_deref() == Some("Pod") && t.name.as_ref().is_some_and(|n| !n.is_empty())
            });
            let pod = target.map(|t| {
                let ns = t.namespace.clone().or_else(|| meta.namespace.clone());
                (ns, t.name.clone().unwrap_or_default())
            });
            let (rank, name) = match &pod {
                Some((ns, pod_name)) => (
                    Rank::SlicePod,
                    Name {
                        kind: Kind::Pod,
                        namespace: ns.clone(),
                        name: pod_name.clone(),
                        node: ep.node_name.clone(),
                        service: None,
                    },
                ),
                None => (
                    Rank::Endpoint,
                    Name {
                        kind: Kind::Endpoint,
                        namespace: meta.namespace.clone(),
                        name: service.clone(),
                        node: ep.node_name.clone(),
                        service: Some(service.clone()),
                    },
                ),
            };
            let on_host = pod
                .as_ref()
                .is_some_and(|(ns, n)| self.host_network.contains(&(ns.as_deref(), n.as_str())));
            for s in &ep.addresses {
                let Some(addr) = self.ip(s) else { continue };
                if !on_host {
                    self.by_ip.claim(addr, rank, &name);
                }
                let backends = self.backends.entry(addr).or_default();
                backends.extend(ports.iter().map(|&port| Backend {
                    namespace: meta.namespace.clone(),
                    service: service.clone(),
                    pod: pod.clone(),
                    port,
                }));
            }
        }
    }

    /// The winners, with each pod's service filled in: of the slices that list its address
    /// (in its namespace, and naming this pod if they name one), the first service by name,
    /// and where a port belongs to another service, that one for the port.
    fn finish(self) -> (HashMap<IpAddr, Name>, HashMap<Endpoint, Name>) {
        let mut by_ip = self.by_ip.into_names();
        let mut by_endpoint = self.by_ep.into_names();
        for (addr, name) in by_ip.iter_mut() {
            if name.kind != Kind::Pod {
                continue;
            }
            let Some(all) = self.backends.get(addr) else {
                continue;
            };
            let of_pod = |b: &&Backend| {
                b.namespace == name.namespace
                    && (b.pod.as_ref())
                        .is_none_or(|(ns, n)| *ns == name.namespace && *n == name.name)
            };
            let mine: Vec<&Backend> = all.iter().filter(of_pod).collect();
            let Some(first) = mine.iter().map(|b| &b.service).min() else {
                continue;
            };
            name.service = Some(first.clone());
            let mut per_port: BTreeMap<u16, &String> = BTreeMap::new();
            for b in &mine {
                if let Some(port) = b.port {
                    let s = per_port.entry(port).or_insert(&b.service);
                    *s = (*s).min(&b.service);
                }
            }
            for (port, service) in per_port {
                let ep = Endpoint { ip: *addr, port };
                if service != first && !by_endpoint.contains_key(&ep) {
                    let mut named = name.clone();
                    named.service = Some(service.clone());
                    by_endpoint.insert(ep, named);
                }
            }
        }
        (by_ip, by_endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const CLUSTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/k8s/cluster.json");

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn names(doc: &Value) -> Names {
        Names::from_json(&doc.to_string(), "t.json").unwrap()
    }

    fn list(items: Vec<Value>) -> Value {
        json!({"apiVersion": "v1", "kind": "List", "items": items,
               "metadata": {"resourceVersion": ""}})
    }

    fn pod(ns: &str, name: &str, node: &str, ips: &[&str]) -> Value {
        let pod_ips: Vec<Value> = ips.iter().map(|i| json!({"ip": i})).collect();
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "uid": "u"},
               "spec": {"nodeName": node, "containers": [{"name": "c"}]},
               "status": {"phase": "Running", "podIP": ips.first(), "podIPs": pod_ips}})
    }

    fn service(ns: &str, name: &str, cluster_ips: &[&str]) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": ns},
               "spec": {"clusterIP": cluster_ips.first(), "clusterIPs": cluster_ips,
                        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
                        "type": "ClusterIP"},
               "status": {"loadBalancer": {}}})
    }

    fn node(name: &str, internal: &[&str]) -> Value {
        let mut addresses: Vec<Value> = internal
            .iter()
            .map(|a| json!({"type": "InternalIP", "address": a}))
            .collect();
        addresses.push(json!({"type": "Hostname", "address": name}));
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
               "status": {"addresses": addresses}})
    }

    /// An EndpointSlice of `service`: (address, targetRef pod) pairs, on `ports`.
    fn slice(ns: &str, service: &str, endpoints: &[(&str, Option<&str>)], ports: &[u16]) -> Value {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(a, pod)| match pod {
                Some(p) => json!({"addresses": [a], "conditions": {"ready": true},
                                  "targetRef": {"kind": "Pod", "name": p, "namespace": ns}}),
                None => json!({"addresses": [a], "conditions": {"ready": true}}),
            })
            .collect();
        let ports: Vec<Value> = ports
            .iter()
            .map(|p| json!({"port": p, "protocol": "TCP"}))
            .collect();
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
               "metadata": {"name": format!("{service}-abcde"), "namespace": ns,
                            "labels": {"kubernetes.io/service-name": service}},
               "endpoints": endpoints, "ports": ports})
    }

    fn label(n: &Names, addr: &str) -> Option<String> {
        n.label(ip(addr))
    }

    // ---- the lab's cluster (testdata/k8s/cluster.json) ----

    #[test]
    fn test_lab_cluster_every_address_named() {
        let n = Names::from_file(Path::new(CLUSTER)).unwrap();
        let expected = [
            ("10.77.1.2", "pod default/web-7d9f8"),
            ("10.77.1.1", "node node-1"),
            ("10.77.2.1", "node node-1"),
            ("10.77.3.1", "node node-1"),
            ("10.77.100.100", "svc default/api"),
            ("10.77.2.2", "pod default/api-5f2c1"),
            ("10.77.3.2", "pod default/api-7b4d2"),
        ];
        for (addr, want) in expected {
            assert_eq!(label(&n, addr).as_deref(), Some(want), "{addr}");
        }
        assert_eq!(
            n.get(ip("10.77.1.2")).unwrap().node.as_deref(),
            Some("node-1")
        );
        assert_eq!(
            n.get(ip("10.77.3.2")).unwrap().node.as_deref(),
            Some("node-3")
        );
        assert_eq!(
            label(&n, "10.77.100.1").as_deref(),
            Some("svc default/kubernetes")
        );
        assert_eq!(label(&n, "10.77.9.9"), None);
    }

    #[test]
    fn test_lab_cluster_backends_carry_their_service() {
        let n = Names::from_file(Path::new(CLUSTER)).unwrap();
        for addr in ["10.77.2.2", "10.77.3.2"] {
            // api-headless lists them too: "api" comes first by name.
            assert_eq!(
                n.get(ip(addr)).unwrap().service.as_deref(),
                Some("api"),
                "{addr}"
            );
        }
        let client = n.get(ip("10.77.1.2")).unwrap();
        assert_eq!(client.service, None);
        assert_eq!(n.get(ip("10.77.100.100")).unwrap().service, None);
    }

    #[test]
    fn test_lab_cluster_counts_every_object() {
        let n = Names::from_file(Path::new(CLUSTER)).unwrap();
        let c = n.counts();
        assert_eq!(
            (c.pods, c.services, c.endpoint_slices, c.nodes),
            (5, 3, 3, 3)
        );
        assert_eq!((c.ignored_objects, c.not_ip), (0, 0));
        // 3 on node-1, 1 client pod, 2 backends, 2 services, 2 other nodes.
        assert_eq!(n.len(), 10);
    }

    // ---- which name wins ----

    #[test]
    fn test_host_network_pod_does_not_take_its_node_address() {
        let mut proxy = pod("kube-system", "kube-proxy-q8w4n", "node-1", &["10.77.1.1"]);
        proxy["spec"]["hostNetwork"] = json!(true);
        proxy["spec"]["containers"][0]["ports"] = json!([{"containerPort": 10256}]);
        // Without the node in the file the address stays unnamed rather than the pod's.
        let alone = names(&list(vec![proxy.clone()]));
        assert_eq!(alone.get(ip("10.77.1.1")), None);
        let n = names(&list(vec![proxy, node("node-1", &["10.77.1.1"])]));
        assert_eq!(label(&n, "10.77.1.1").as_deref(), Some("node node-1"));
        let health = Endpoint {
            ip: ip("10.77.1.1"),
            port: 10256,
        };
        assert_eq!(
            n.get_endpoint(health).unwrap().label(),
            "pod kube-system/kube-proxy-q8w4n"
        );
    }

    #[test]
    fn test_host_network_pod_in_a_slice_does_not_take_its_node_address() {
        let mut agent = pod("mon", "agent-1", "node-1", &["10.0.0.5"]);
        agent["spec"]["hostNetwork"] = json!(true);
        let s = slice("mon", "agent", &[("10.0.0.5", Some("agent-1"))], &[9100]);
        let n = names(&list(vec![s, agent]));
        assert_eq!(n.get(ip("10.0.0.5")), None);
    }

    #[test]
    fn test_running_pod_wins_over_finished_pod_with_same_ip() {
        let mut job = pod("default", "migrate-29xk1", "node-2", &["10.77.2.2"]);
        job["status"]["phase"] = json!("Succeeded");
        let api = pod("default", "zz-api", "node-2", &["10.77.2.2"]);
        for items in [vec![job.clone(), api.clone()], vec![api, job]] {
            let n = names(&list(items));
            assert_eq!(
                label(&n, "10.77.2.2").as_deref(),
                Some("pod default/zz-api")
            );
        }
    }

    #[test]
    fn test_service_wins_over_pod_and_node() {
        let items = vec![
            node("node-1", &["10.1.1.1"]),
            pod("default", "p", "node-1", &["10.1.1.1"]),
            service("default", "s", &["10.1.1.1"]),
        ];
        assert_eq!(
            label(&names(&list(items)), "10.1.1.1").as_deref(),
            Some("svc default/s")
        );
    }

    #[test]
    fn test_equal_claims_first_by_namespace_then_name_in_any_order() {
        let a = service("b-ns", "a", &["10.1.1.1"]);
        let b = service("a-ns", "z", &["10.1.1.1"]);
        for items in [vec![a.clone(), b.clone()], vec![b, a]] {
            assert_eq!(
                label(&names(&list(items)), "10.1.1.1").as_deref(),
                Some("svc a-ns/z")
            );
        }
    }

    // ---- services ----

    #[test]
    fn test_service_cluster_ip_none_ignored() {
        let n = names(&list(vec![service("default", "headless", &["None"])]));
        assert!(n.is_empty());
        assert_eq!(n.counts().not_ip, 0);
    }

    #[test]
    fn test_service_load_balancer_and_external_ips_named() {
        let mut s = service("default", "web", &["10.96.0.20"]);
        s["spec"]["externalIPs"] = json!(["198.51.100.7"]);
        s["status"]["loadBalancer"] =
            json!({"ingress": [{"ip": "203.0.113.10"}, {"hostname": "lb.example.com"}]});
        let n = names(&s);
        for addr in ["10.96.0.20", "198.51.100.7", "203.0.113.10"] {
            assert_eq!(
                label(&n, addr).as_deref(),
                Some("svc default/web"),
                "{addr}"
            );
        }
        assert_eq!(n.len(), 3);
    }

    #[test]
    fn test_service_node_port_named_on_every_node_address() {
        let mut s = service("default", "web", &["10.96.0.20"]);
        s["spec"]["type"] = json!("NodePort");
        s["spec"]["ports"][0]["nodePort"] = json!(30080);
        let n = names(&list(vec![
            s,
            node("node-1", &["10.0.0.1"]),
            node("node-2", &["10.0.0.2"]),
        ]));
        for addr in ["10.0.0.1", "10.0.0.2"] {
            let ep = Endpoint {
                ip: ip(addr),
                port: 30080,
            };
            assert_eq!(n.get_endpoint(ep).unwrap().label(), "svc default/web");
            let other = Endpoint {
                ip: ip(addr),
                port: 22,
            };
            assert_eq!(n.get_endpoint(other).unwrap().kind, Kind::Node);
        }
    }

    // ---- EndpointSlices ----

    #[test]
    fn test_slice_pod_not_in_file_named_from_target_ref() {
        let mut s = slice(
            "default",
            "api",
            &[("10.77.2.2", Some("api-5f2c1"))],
            &[8080],
        );
        s["endpoints"][0]["nodeName"] = json!("node-2");
        let got = names(&s).get(ip("10.77.2.2")).cloned().unwrap();
        let want = Name {
            kind: Kind::Pod,
            namespace: Some("default".into()),
            name: "api-5f2c1".into(),
            node: Some("node-2".into()),
            service: Some("api".into()),
        };
        assert_eq!(got, want);
    }

    #[test]
    fn test_slice_address_without_pod_is_an_endpoint_of_its_service() {
        let s = slice("default", "db", &[("192.0.2.40", None)], &[5432]);
        let n = names(&s);
        let name = n.get(ip("192.0.2.40")).unwrap();
        assert_eq!(
            (name.kind, name.label()),
            (Kind::Endpoint, "ep default/db".into())
        );
        assert_eq!(name.service.as_deref(), Some("db"));
    }

    #[test]
    fn test_slice_of_another_pod_does_not_set_service() {
        // A stale slice still lists the old pod's address.
        let s = slice("default", "api", &[("10.77.2.2", Some("api-old"))], &[8080]);
        let n = names(&list(vec![
            s,
            pod("default", "web-new", "node-2", &["10.77.2.2"]),
        ]));
        let name = n.get(ip("10.77.2.2")).unwrap();
        assert_eq!(
            (name.name.as_str(), name.service.as_deref()),
            ("web-new", None)
        );
    }

    #[test]
    fn test_slice_port_tells_which_service() {
        let items = vec![
            pod("default", "api-1", "node-2", &["10.77.2.2"]),
            slice("default", "api", &[("10.77.2.2", Some("api-1"))], &[8080]),
            slice(
                "default",
                "metrics",
                &[("10.77.2.2", Some("api-1"))],
                &[9090],
            ),
        ];
        let n = names(&list(items));
        let at = |port| {
            n.get_endpoint(Endpoint {
                ip: ip("10.77.2.2"),
                port,
            })
            .unwrap()
        };
        assert_eq!(at(8080).service.as_deref(), Some("api"));
        assert_eq!(at(9090).service.as_deref(), Some("metrics"));
        assert_eq!(at(1).service.as_deref(), Some("api"));
    }

    #[test]
    fn test_slice_fqdn_addresses_counted_not_named() {
        let mut s = slice("default", "ext", &[("db.example.com", None)], &[5432]);
        s["addressType"] = json!("FQDN");
        let n = names(&s);
        assert!(n.is_empty());
        assert_eq!(n.counts().not_ip, 1);
    }

    // ---- IPv6 ----

    #[test]
    fn test_ipv6_dual_stack_pod_service_and_node() {
        let items = vec![
            pod("default", "web", "node-1", &["10.77.1.2", "fd00:77:1::2"]),
            service("default", "api", &["10.77.100.100", "fd00:77:100::100"]),
            node("node-1", &["fd00:77:1::1"]),
        ];
        let n = names(&list(items));
        assert_eq!(
            label(&n, "fd00:77:1::2").as_deref(),
            Some("pod default/web")
        );
        assert_eq!(label(&n, "10.77.1.2").as_deref(), Some("pod default/web"));
        assert_eq!(
            label(&n, "fd00:77:100::100").as_deref(),
            Some("svc default/api")
        );
        assert_eq!(label(&n, "fd00:77:1::1").as_deref(), Some("node node-1"));
        let mut s = slice("default", "api", &[("fd00:77:1::2", Some("web"))], &[8080]);
        s["addressType"] = json!("IPv6");
        let n = names(&list(vec![
            pod("default", "web", "node-1", &["fd00:77:1::2"]),
            s,
        ]));
        assert_eq!(
            n.get(ip("fd00:77:1::2")).unwrap().service.as_deref(),
            Some("api")
        );
    }

    // ---- shapes of the file ----

    #[test]
    fn test_shape_empty_list_gives_empty_names() {
        let n = names(&list(vec![]));
        assert!(n.is_empty());
        assert_eq!(n.len(), 0);
        assert_eq!(n.counts(), Counts::default());
        assert!(
            Names::from_json(r#"{"kind":"List","items":null}"#, "t")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn test_shape_single_object() {
        let n = names(&pod("default", "web", "node-1", &["10.77.1.2"]));
        assert_eq!(label(&n, "10.77.1.2").as_deref(), Some("pod default/web"));
    }

    #[test]
    fn test_shape_list_of_lists() {
        let inner_pods = list(vec![pod("default", "web", "node-1", &["10.77.1.2"])]);
        let mut inner_nodes = list(vec![node("node-1", &["10.77.1.1"])]);
        inner_nodes["kind"] = json!("NodeList");
        let n = names(&list(vec![inner_pods, list(vec![inner_nodes])]));
        assert_eq!(label(&n, "10.77.1.2").as_deref(), Some("pod default/web"));
        assert_eq!(label(&n, "10.77.1.1").as_deref(), Some("node node-1"));
    }

    #[test]
    fn test_shape_documents_one_after_another() {
        let text = format!(
            "{}\n{}\n",
            list(vec![pod("default", "web", "node-1", &["10.77.1.2"])]),
            list(vec![node("node-1", &["10.77.1.1"])])
        );
        let n = Names::from_json(&text, "t.json").unwrap();
        assert_eq!(n.len(), 2);
    }

    #[test]
    fn test_shape_unknown_kinds_and_fields_ignored_and_counted() {
        let mut p = pod("default", "web", "node-1", &["10.77.1.2"]);
        p["spec"]["futureField"] = json!({"nested": [1, 2, 3]});
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                        "data": {"a": "b"}});
        let deploy =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2}});
        let n = names(&list(vec![cm, p, deploy]));
        assert_eq!(n.len(), 1);
        assert_eq!(n.counts().ignored_objects, 2);
        assert_eq!(n.counts().pods, 1);
    }

    #[test]
    fn test_shape_nulls_read_as_empty() {
        let text = r#"{"kind":"Pod","metadata":{"name":"p","namespace":"d","labels":null},
            "spec":{"containers":null,"hostNetwork":null},
            "status":{"podIPs":null,"podIP":"10.0.0.9"}}"#;
        let n = Names::from_json(text, "t").unwrap();
        assert_eq!(label(&n, "10.0.0.9").as_deref(), Some("pod d/p"));
    }

    // ---- errors ----

    #[test]
    fn test_error_malformed_json_names_file_line_and_column() {
        let text = "{\n  \"kind\": \"List\",\n  \"items\": [,]\n}\n";
        let err = Names::from_json(text, "cluster.json").unwrap_err();
        match &err.kind {
            K8sErrorKind::NotJson { line, column, .. } => assert_eq!((*line, *column), (3, 13)),
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.starts_with("cluster.json: line 3, column 13: not JSON: "),
            "{msg}"
        );
        assert!(!msg.contains(" at line "), "{msg}");
    }

    #[test]
    fn test_error_cut_off_json_is_not_json() {
        let err = Names::from_json("{\"kind\": \"List\", \"items\": [", "c.json").unwrap_err();
        assert!(
            matches!(err.kind, K8sErrorKind::NotJson { line: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn test_error_json_without_kind_is_not_kubectl() {
        for text in [r#"{"items": []}"#, "[1, 2]", "42"] {
            let err = Names::from_json(text, "x.json").unwrap_err();
            assert!(
                matches!(err.kind, K8sErrorKind::NotKubectl { .. }),
                "{text}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.starts_with("x.json: line 1, column "), "{msg}");
            assert!(msg.contains("not a Kubernetes object or List"), "{msg}");
        }
    }

    #[test]
    fn test_error_wrong_field_type_is_not_kubectl() {
        let text = r#"{"kind": "Pod", "status": {"podIPs": "10.0.0.1"}}"#;
        let err = Names::from_json(text, "x.json").unwrap_err();
        assert!(
            matches!(err.kind, K8sErrorKind::NotKubectl { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn test_error_empty_file() {
        let err = Names::from_json(" \n", "empty.json").unwrap_err();
        assert_eq!(err.kind, K8sErrorKind::Empty);
        assert!(err.to_string().starts_with("empty.json: empty"));
    }

    #[test]
    fn test_error_unreadable_file_names_it() {
        let err = Names::from_file(Path::new("/nonexistent/k8s.json")).unwrap_err();
        assert!(matches!(err.kind, K8sErrorKind::Io { .. }));
        assert!(
            err.to_string()
                .starts_with("/nonexistent/k8s.json: cannot read: "),
            "{err}"
        );
    }

    // ---- labels ----

    #[test]
    fn test_label_kinds_and_codes() {
        let name = |kind, namespace: Option<&str>, n: &str| Name {
            kind,
            namespace: namespace.map(String::from),
            name: n.into(),
            node: None,
            service: None,
        };
        assert_eq!(
            name(Kind::Pod, Some("default"), "web-7d9f8").label(),
            "pod default/web-7d9f8"
        );
        assert_eq!(
            name(Kind::Service, Some("default"), "api").to_string(),
            "svc default/api"
        );
        assert_eq!(name(Kind::Node, None, "node-3").label(), "node node-3");
        assert_eq!(
            name(Kind::Endpoint, Some("default"), "db").label(),
            "ep default/db"
        );
        let codes: Vec<&str> = Kind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes, ["pod", "service", "node", "endpoint"]);
    }
}
