use std::sync::Arc;

use super::*;
use crate::config::GcConfig;
use crate::content::tests::fixture;
use crate::content::{Descriptor, Digest};
use crate::gc::Collector;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn image(name: &str, data: &[u8]) -> Image {
    Image {
        name: name.into(),
        labels: labels(&[("team", "a")]),
        target: Descriptor {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: Digest::of(data),
            size: data.len() as i64,
            annotations: labels(&[("note", "x")]),
        },
        created_at: 0,
        updated_at: 0,
    }
}

#[tokio::test]
async fn crud_with_events() {
    let f = fixture();
    let gc = Collector::new(f.md.clone(), GcConfig::default(), f.trigger.clone());
    let images = Images::new(f.md.clone(), f.events.clone(), gc);
    let mut sub = f.events.subscribe();
    let all = Filter::default();

    let created = images
        .create("ns", image("docker.io/library/a:1", b"a"))
        .unwrap();
    assert!(created.created_at > 0 && created.created_at == created.updated_at);
    let ev = sub.next(&all).await.unwrap();
    assert_eq!(ev.topic, "/images/create");
    assert_eq!(
        ev.event.as_ref().unwrap().type_url,
        "containerd.services.images.v1.ImageCreate"
    );
    assert_eq!(ev.fields.get("name").unwrap(), "docker.io/library/a:1");
    assert!(matches!(
        images.create("ns", image("docker.io/library/a:1", b"a")),
        Err(Error::AlreadyExists(_))
    ));
    // Names are per namespace.
    images
        .create("other", image("docker.io/library/a:1", b"a"))
        .unwrap();
    let _ = sub.next(&all).await;

    assert_eq!(images.get("ns", "docker.io/library/a:1").unwrap(), created);
    assert!(matches!(images.get("ns", "nope"), Err(Error::NotFound(_))));

    images.create("ns", image("b:2", b"b")).unwrap();
    let _ = sub.next(&all).await;
    let names = |f: &str| -> Vec<String> {
        images
            .list("ns", &Filter::parse(f).unwrap())
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect()
    };
    assert_eq!(names(""), vec!["b:2", "docker.io/library/a:1"]);
    assert_eq!(names("name==b:2"), vec!["b:2"]);
    assert_eq!(
        names(&format!("target.digest=={}", Digest::of(b"a"))),
        vec!["docker.io/library/a:1"]
    );
    assert_eq!(names("target.mediatype~=index").len(), 2);
    assert_eq!(names("labels.team==a,annotations.note==x").len(), 2);
    assert!(names("labels.team==b").is_empty());

    // Masks.
    let mut upd = image("b:2", b"new target");
    upd.labels = labels(&[("team", "b"), ("extra", "1")]);
    upd.target.annotations = labels(&[("note", "y")]);
    let got = images
        .update("ns", upd.clone(), &["labels.extra".into()])
        .unwrap();
    assert_eq!(got.labels, labels(&[("team", "a"), ("extra", "1")]));
    assert_eq!(got.target.digest, Digest::of(b"b"));
    let ev = sub.next(&all).await.unwrap();
    assert_eq!(ev.topic, "/images/update");
    let got = images
        .update("ns", upd.clone(), &["annotations.note".into()])
        .unwrap();
    assert_eq!(got.target.annotations, labels(&[("note", "y")]));
    let got = images
        .update("ns", upd.clone(), &["target".into()])
        .unwrap();
    assert_eq!(got.target.digest, Digest::of(b"new target"));
    assert!(got.updated_at >= got.created_at);
    let mut repl = image("b:2", b"z");
    repl.labels = Labels::new();
    let got = images.update("ns", repl, &[]).unwrap();
    assert!(got.labels.is_empty());
    assert_eq!(got.target.digest, Digest::of(b"z"));
    assert!(matches!(
        images.update("ns", upd.clone(), &["name".into()]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        images.update("ns", image("missing:1", b"m"), &[]),
        Err(Error::NotFound(_))
    ));

    images.delete("ns", "b:2", false).await.unwrap();
    assert!(f.trigger.pending(), "delete schedules garbage collection");
    let ev = sub
        .next(&Filter::parse("topic==\"/images/delete\"").unwrap())
        .await
        .unwrap();
    assert_eq!(ev.fields.get("name").unwrap(), "b:2");
    assert!(matches!(
        images.delete("ns", "b:2", false).await,
        Err(Error::NotFound(_))
    ));
    // A namespace with images is not empty.
    assert!(matches!(
        f.md.namespace_delete("ns"),
        Err(Error::FailedPrecondition(_))
    ));
}

#[tokio::test]
async fn invalid_images_are_refused() {
    let f = fixture();
    let gc = Collector::new(f.md.clone(), GcConfig::default(), f.trigger.clone());
    let images = Images::new(f.md.clone(), f.events.clone(), Arc::clone(&gc));
    for name in ["", "bad name", "ctl\u{1}", "UP/per"] {
        let err = images.create("ns", image(name, b"x")).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{name:?}: {err}");
    }
    let mut no_size = image("a:1", b"x");
    no_size.target.size = 0;
    assert!(matches!(
        images.create("ns", no_size),
        Err(Error::InvalidArgument(_))
    ));
    let mut no_type = image("a:1", b"x");
    no_type.target.media_type.clear();
    assert!(matches!(
        images.create("ns", no_type),
        Err(Error::InvalidArgument(_))
    ));
}
