import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='DeletedRoom',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('pagecall_id', models.CharField(max_length=64, unique=True, verbose_name='Pagecall id')),
                ('pagecall_created_at', models.DateTimeField(verbose_name='created at Pagecall')),
                ('deleted_at', models.DateTimeField(auto_now_add=True, verbose_name='deleted')),
            ],
            options={
                'verbose_name': 'deleted room',
            },
        ),
        migrations.CreateModel(
            name='PagecallUser',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255, unique=True, verbose_name='Pagecall user id')),
                ('name', models.CharField(blank=True, default='', max_length=255)),
                ('access_token', models.CharField(blank=True, default='', editable=False, max_length=255)),
                ('registered_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name': 'Pagecall user',
                'ordering': ['user_id'],
            },
        ),
        migrations.CreateModel(
            name='PendingAction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('block_member', 'block a member (deleted from a private room)'), ('delete_room', 'delete a room (deleted locally)')], max_length=32, verbose_name='kind')),
                ('room_pagecall_id', models.CharField(blank=True, default='', help_text='Blank while the room is being created: the call waits for its id.', max_length=64, verbose_name='Pagecall room id')),
                ('room_pk', models.BigIntegerField(blank=True, help_text="The local room (its primary key), for a call that waits for the room's id.", null=True, verbose_name='room')),
                ('user_id', models.CharField(blank=True, default='', max_length=255, verbose_name='Pagecall user id')),
                ('attempts', models.PositiveIntegerField(default=0, verbose_name='attempts')),
                ('last_error', models.TextField(blank=True, default='', verbose_name='last error')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
            ],
            options={
                'verbose_name': 'pending action',
                'ordering': ['pk'],
            },
        ),
        migrations.CreateModel(
            name='Room',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sync_state', models.CharField(choices=[('pending', 'pending'), ('creating', 'creating'), ('synced', 'synced'), ('failed', 'failed')], default='pending', max_length=16, verbose_name='sync state')),
                ('sync_attempts', models.PositiveIntegerField(default=0, editable=False, verbose_name='attempts')),
                ('sync_error', models.TextField(blank=True, default='', editable=False, verbose_name='last error')),
                ('attempt_started_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('lease_until', models.DateTimeField(blank=True, editable=False, null=True)),
                ('synced_at', models.DateTimeField(blank=True, editable=False, null=True, verbose_name='synced at')),
                ('needs_update', models.BooleanField(default=False, editable=False, help_text='A local change has yet to reach Pagecall.')),
                ('name', models.CharField(max_length=255, verbose_name='name')),
                ('type', models.CharField(choices=[('open', 'open: anyone with the link'), ('public', 'public: users of the workspace'), ('private', 'private: invited members only')], default='public', max_length=16, verbose_name='type')),
                ('record', models.BooleanField(default=True, verbose_name='record')),
                ('max_meeting_seconds', models.PositiveIntegerField(blank=True, help_text='Pagecall ends the meeting after this much time with two or more people.', null=True, verbose_name='max meeting seconds')),
                ('pagecall_id', models.CharField(blank=True, editable=False, max_length=64, null=True, unique=True, verbose_name='Pagecall id')),
                ('name_in_flight', models.CharField(blank=True, editable=False, max_length=255, null=True, unique=True, verbose_name='name in flight')),
                ('application_id', models.CharField(blank=True, default='', editable=False, max_length=64)),
                ('layout', models.CharField(blank=True, default='', editable=False, max_length=64)),
                ('thumbnail_url', models.URLField(blank=True, default='', editable=False, max_length=1024)),
                ('meeting_time', models.PositiveIntegerField(blank=True, editable=False, null=True)),
                ('started_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('terminated_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('pagecall_created_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('pagecall_updated_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('terminate_requested', models.BooleanField(default=False, editable=False)),
                ('sessions_count', models.PositiveIntegerField(blank=True, editable=False, null=True)),
                ('members_count', models.PositiveIntegerField(blank=True, editable=False, null=True)),
                ('counters_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('meeting_started_at', models.DateTimeField(blank=True, editable=False, null=True, verbose_name='in a meeting since')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['-created_at', '-pk'],
                'indexes': [models.Index(fields=['sync_state', 'lease_until'], name='pagecall_room_sync_idx')],
            },
        ),
        migrations.CreateModel(
            name='Member',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sync_state', models.CharField(choices=[('pending', 'pending'), ('creating', 'creating'), ('synced', 'synced'), ('failed', 'failed')], default='pending', max_length=16, verbose_name='sync state')),
                ('sync_attempts', models.PositiveIntegerField(default=0, editable=False, verbose_name='attempts')),
                ('sync_error', models.TextField(blank=True, default='', editable=False, verbose_name='last error')),
                ('attempt_started_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('lease_until', models.DateTimeField(blank=True, editable=False, null=True)),
                ('synced_at', models.DateTimeField(blank=True, editable=False, null=True, verbose_name='synced at')),
                ('needs_update', models.BooleanField(default=False, editable=False, help_text='A local change has yet to reach Pagecall.')),
                ('user_id', models.CharField(blank=True, help_text="The site's own id for this person. Left blank, it is derived from the site user.", max_length=255, verbose_name='Pagecall user id')),
                ('type', models.CharField(choices=[('guest', 'guest'), ('host', 'host'), ('monitor', 'monitor (watches, cannot join)')], default='guest', max_length=16, verbose_name='type')),
                ('name', models.CharField(blank=True, default='', max_length=255, verbose_name='display name')),
                ('pagecall_id', models.CharField(blank=True, default='', editable=False, max_length=64, verbose_name='Pagecall member id')),
                ('is_blocked', models.BooleanField(default=False, editable=False, verbose_name='blocked')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('site_user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='pagecall_members', to=settings.AUTH_USER_MODEL, verbose_name='site user')),
                ('room', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='members', to='django_pagecall.room')),
            ],
            options={
                'ordering': ['room', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='Session',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('session_id', models.CharField(max_length=64, verbose_name='Pagecall session id')),
                ('member_id', models.CharField(blank=True, default='', max_length=64, verbose_name='Pagecall member id')),
                ('user_id', models.CharField(blank=True, default='', max_length=255, verbose_name='Pagecall user id')),
                ('joined_at', models.DateTimeField(blank=True, null=True, verbose_name='joined at')),
                ('left_at', models.DateTimeField(blank=True, null=True, verbose_name='left at')),
                ('source', models.CharField(choices=[('webhook', 'webhook'), ('reconciled', 'reconciled from GET /rooms/{id}/sessions')], default='webhook', max_length=16)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('room', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='sessions', to='django_pagecall.room')),
                ('room_member', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='sessions', to='django_pagecall.member', verbose_name='member')),
            ],
            options={
                'ordering': ['-joined_at', '-pk'],
            },
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(blank=True, default='', max_length=64, verbose_name='action')),
                ('session_id', models.CharField(blank=True, default='', max_length=64, verbose_name='Pagecall session id')),
                ('event_at', models.DateTimeField(blank=True, null=True, verbose_name='event timestamp')),
                ('headers', models.JSONField(default=dict, help_text='Secrets masked.', verbose_name='headers')),
                ('body', models.TextField(blank=True, default='', verbose_name='body')),
                ('remote_addr', models.GenericIPAddressField(blank=True, null=True, verbose_name='remote address')),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='received at')),
                ('state', models.CharField(choices=[('received', 'received'), ('processed', 'processed'), ('failed', 'failed'), ('waiting', "waiting for the room's Pagecall id")], max_length=16, verbose_name='state')),
                ('result', models.CharField(blank=True, choices=[('applied', 'applied'), ('duplicate', 'duplicate or older: nothing changed'), ('room_gone', 'room no longer exists'), ('unknown_action', 'action the app does not know: announced only'), ('invalid', 'invalid body'), ('too_large', 'body too large (not stored)')], default='', max_length=16, verbose_name='result')),
                ('error', models.TextField(blank=True, default='', verbose_name='error')),
                ('traceback', models.TextField(blank=True, default='', verbose_name='traceback')),
                ('processed_at', models.DateTimeField(blank=True, null=True, verbose_name='processed at')),
                ('attempts', models.PositiveIntegerField(default=1, verbose_name='attempts')),
                ('room', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='webhook_deliveries', to='django_pagecall.room', verbose_name='room')),
            ],
            options={
                'verbose_name': 'webhook delivery',
                'verbose_name_plural': 'webhook deliveries',
                'ordering': ['-received_at', '-pk'],
            },
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(fields=['sync_state'], name='pagecall_member_sync_idx'),
        ),
        migrations.AddConstraint(
            model_name='member',
            constraint=models.UniqueConstraint(fields=('room', 'user_id'), name='pagecall_member_unique_user'),
        ),
        migrations.AddIndex(
            model_name='session',
            index=models.Index(fields=['room', 'left_at'], name='pagecall_session_online_idx'),
        ),
        migrations.AddIndex(
            model_name='session',
            index=models.Index(fields=['joined_at', 'id'], name='pagecall_session_joined_idx'),
        ),
        migrations.AddConstraint(
            model_name='session',
            constraint=models.UniqueConstraint(fields=('session_id',), name='pagecall_session_unique_id'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(fields=['received_at', 'id'], name='pagecall_delivery_received_idx'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(fields=['state', 'received_at'], name='pagecall_delivery_state_idx'),
        ),
    ]
